// The gateway's config file: comments, defaults, overrides, and error messages that name the key.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "gateway_config.h"
#include "gateway_test_util.h"

namespace cwc::gateway {
namespace {

using gwtest::ScopedEnv;
using gwtest::TempDir;

constexpr const char* kMinimal = R"({"channels":{"wecom":{"token":"T","encodingAESKey":"K"}}})";

// The ConfigError message for `text`, or "no error".
std::string error_of(const std::string& text) {
  try {
    parse_gateway_config(text);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

// `extra` is spliced into an object that already holds a valid channels.wecom.
std::string with_wecom(const std::string& extra) {
  return std::string(R"({"channels":{"wecom":{"token":"T"}})") + (extra.empty() ? "" : "," + extra) + "}";
}

TEST(GatewayConfig, LineAndBlockCommentsAreAllowed) {
  const auto c = parse_gateway_config(R"(// the gateway config
{
  /* block
     comment */
  "gateway": { "port": 9001 }, // trailing line comment
  "channels": { "wecom": { "token": "T" /* inline */ } }
}
// final comment)");
  EXPECT_EQ(c.port, 9001);
  EXPECT_EQ(c.wecom["token"], "T");
}

TEST(GatewayConfig, Defaults) {
  ScopedEnv home("HOME", "/home/unit-test");
  const auto c = parse_gateway_config(kMinimal);
  EXPECT_EQ(c.port, 18789);
  EXPECT_EQ(c.bind, "127.0.0.1");
  // README and docs/configuration.md document 64 HTTP worker threads, so 64 is the default the
  // code must keep.
  EXPECT_EQ(c.threads, 64);
  EXPECT_EQ(c.shutdown_grace_ms, 3000);
  EXPECT_EQ(c.state_dir, "/home/unit-test/.clawdbot-wecom");
  EXPECT_EQ(c.agent_kind, "echo");
  EXPECT_EQ(c.agent_concurrency, 8);
  EXPECT_EQ(c.echo.delay_ms, 300);
  EXPECT_EQ(c.openai.base_url, "");
  EXPECT_EQ(c.openai.api_key, "");
  EXPECT_EQ(c.openai.api_key_env, "OPENAI_API_KEY");
  EXPECT_EQ(c.openai.model, "gpt-4o-mini");
  EXPECT_EQ(c.openai.timeout_seconds, 60);
  EXPECT_EQ(c.openai.max_history, 20);
  EXPECT_EQ(c.log_level, "info");
  EXPECT_EQ(c.log_file, "");
  EXPECT_EQ(c.wecom, nlohmann::json::parse(R"({"token":"T","encodingAESKey":"K"})"));
}

TEST(GatewayConfig, StateDirFallsBackToTheWorkingDirectoryWithoutHome) {
  ScopedEnv home("HOME", std::nullopt);
  EXPECT_EQ(parse_gateway_config(kMinimal).state_dir, "./.clawdbot-wecom");
  ScopedEnv empty_home("HOME", "");
  EXPECT_EQ(parse_gateway_config(kMinimal).state_dir, "./.clawdbot-wecom");
}

TEST(GatewayConfig, NullSectionsAndKeysKeepTheDefaults) {
  const auto c = parse_gateway_config(R"({"gateway":null,"agent":{"kind":null,"echo":null},"logging":null,
                                          "channels":{"wecom":{}}})");
  EXPECT_EQ(c.port, 18789);
  EXPECT_EQ(c.agent_kind, "echo");
  EXPECT_EQ(c.echo.delay_ms, 300);
}

TEST(GatewayConfig, EveryKeyCanBeOverridden) {
  const auto c = parse_gateway_config(R"({
    "gateway": {"port": 9000, "bind": "0.0.0.0", "threads": 8, "shutdownGraceMs": 10, "stateDir": "/var/lib/cwc"},
    "channels": {"wecom": {"token": "T", "accounts": {"a": {"token": "U"}}}},
    "agent": {"kind": "openai", "concurrency": 3,
              "echo": {"delayMs": 0},
              "openai": {"baseUrl": "http://h/v1/", "apiKey": "sk-x", "apiKeyEnv": "MY_KEY", "model": "m",
                         "systemPrompt": "be brief", "timeoutSeconds": 5, "maxHistory": 4}},
    "logging": {"level": "debug", "file": "/tmp/x.log"}})");
  EXPECT_EQ(c.port, 9000);
  EXPECT_EQ(c.bind, "0.0.0.0");
  EXPECT_EQ(c.threads, 8);
  EXPECT_EQ(c.shutdown_grace_ms, 10);
  EXPECT_EQ(c.state_dir, "/var/lib/cwc");
  EXPECT_EQ(c.agent_kind, "openai");
  EXPECT_EQ(c.agent_concurrency, 3);
  EXPECT_EQ(c.echo.delay_ms, 0);
  EXPECT_EQ(c.openai.base_url, "http://h/v1/");
  EXPECT_EQ(c.openai.api_key, "sk-x");
  EXPECT_EQ(c.openai.api_key_env, "MY_KEY");
  EXPECT_EQ(c.openai.model, "m");
  EXPECT_EQ(c.openai.system_prompt, "be brief");
  EXPECT_EQ(c.openai.timeout_seconds, 5);
  EXPECT_EQ(c.openai.max_history, 4);
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_EQ(c.log_file, "/tmp/x.log");
  EXPECT_EQ(c.wecom["accounts"]["a"]["token"], "U");  // channels.wecom is passed on verbatim
}

TEST(GatewayConfig, RangeLimitsAreInclusive) {
  EXPECT_EQ(parse_gateway_config(with_wecom(R"("gateway":{"port":0})")).port, 0);  // 0: any free port
  EXPECT_EQ(parse_gateway_config(with_wecom(R"("gateway":{"port":65535})")).port, 65535);
  EXPECT_EQ(parse_gateway_config(with_wecom(R"("gateway":{"threads":2})")).threads, 2);
  EXPECT_EQ(parse_gateway_config(with_wecom(R"("gateway":{"threads":1024})")).threads, 1024);
  EXPECT_EQ(parse_gateway_config(with_wecom("")).event_loops, 0);  // 0: three per core
  EXPECT_EQ(parse_gateway_config(with_wecom(R"("gateway":{"eventLoops":1})")).event_loops, 1);
  EXPECT_EQ(parse_gateway_config(with_wecom(R"("gateway":{"eventLoops":256})")).event_loops, 256);
  EXPECT_EQ(parse_gateway_config(with_wecom(R"("agent":{"concurrency":1})")).agent_concurrency, 1);
  EXPECT_EQ(parse_gateway_config(with_wecom(R"("agent":{"openai":{"maxHistory":0}})")).openai.max_history, 0);
}

TEST(GatewayConfig, MissingChannelsWecom) {
  const std::string missing =
      "channels.wecom is missing: add the WeCom bot's token and encodingAESKey (see docs/configuration.md)";
  EXPECT_EQ(error_of("{}"), missing);
  EXPECT_EQ(error_of(R"({"channels":{}})"), missing);
  EXPECT_EQ(error_of(R"({"channels":{"slack":{}}})"), missing);
  EXPECT_EQ(error_of(R"({"channels":{"wecom":"token"}})"), missing);
  EXPECT_EQ(error_of(R"({"channels":{"wecom":null}})"), missing);
  EXPECT_EQ(error_of(R"({"channels":[]})"), "channels must be an object");
}

TEST(GatewayConfig, InvalidAgentKind) {
  EXPECT_EQ(error_of(with_wecom(R"("agent":{"kind":"gpt"})")), "agent.kind must be \"echo\" or \"openai\" (got \"gpt\")");
  EXPECT_EQ(error_of(with_wecom(R"("agent":{"kind":"Echo"})")), "agent.kind must be \"echo\" or \"openai\" (got \"Echo\")");
  EXPECT_EQ(error_of(with_wecom(R"("agent":{"kind":1})")), "agent.kind has the wrong type");
}

TEST(GatewayConfig, OpenAiNeedsABaseUrl) {
  const std::string needed = "agent.openai.baseUrl is required with agent.kind \"openai\" (e.g. https://api.openai.com/v1)";
  EXPECT_EQ(error_of(with_wecom(R"("agent":{"kind":"openai"})")), needed);
  EXPECT_EQ(error_of(with_wecom(R"("agent":{"kind":"openai","openai":{"model":"m"}})")), needed);
  EXPECT_EQ(error_of(with_wecom(R"("agent":{"kind":"openai","openai":{"baseUrl":""}})")), needed);
  // The echo agent does not care.
  EXPECT_EQ(error_of(with_wecom(R"("agent":{"kind":"echo","openai":{}})")), "no error");
}

TEST(GatewayConfig, OutOfRangeNumbers) {
  EXPECT_EQ(error_of(with_wecom(R"("gateway":{"port":65536})")), "gateway.port must be between 0 and 65535");
  EXPECT_EQ(error_of(with_wecom(R"("gateway":{"port":-1})")), "gateway.port must be between 0 and 65535");
  EXPECT_EQ(error_of(with_wecom(R"("gateway":{"port":99999999999})")), "gateway.port must be between 0 and 65535");
  EXPECT_EQ(error_of(with_wecom(R"("gateway":{"threads":1})")), "gateway.threads must be between 2 and 1024");
  EXPECT_EQ(error_of(with_wecom(R"("gateway":{"eventLoops":257})")), "gateway.eventLoops must be between 0 and 256");
  EXPECT_EQ(error_of(with_wecom(R"("gateway":{"eventLoops":-1})")), "gateway.eventLoops must be between 0 and 256");
  EXPECT_EQ(error_of(with_wecom(R"("gateway":{"shutdownGraceMs":600001})")),
            "gateway.shutdownGraceMs must be between 0 and 600000");
  EXPECT_EQ(error_of(with_wecom(R"("agent":{"concurrency":0})")), "agent.concurrency must be between 1 and 256");
  EXPECT_EQ(error_of(with_wecom(R"("agent":{"echo":{"delayMs":60001}})")), "agent.echo.delayMs must be between 0 and 60000");
  EXPECT_EQ(error_of(with_wecom(R"("agent":{"openai":{"timeoutSeconds":0}})")),
            "agent.openai.timeoutSeconds must be between 1 and 3600");
}

TEST(GatewayConfig, WrongTypes) {
  EXPECT_EQ(error_of(with_wecom(R"("gateway":{"port":"18789"})")), "gateway.port must be an integer");
  EXPECT_EQ(error_of(with_wecom(R"("gateway":{"port":80.5})")), "gateway.port must be an integer");
  EXPECT_EQ(error_of(with_wecom(R"("gateway":{"port":true})")), "gateway.port must be an integer");
  EXPECT_EQ(error_of(with_wecom(R"("gateway":{"bind":5})")), "gateway.bind has the wrong type");
  EXPECT_EQ(error_of(with_wecom(R"("gateway":{"stateDir":["a"]})")), "gateway.stateDir has the wrong type");
  EXPECT_EQ(error_of(with_wecom(R"("agent":{"openai":{"model":3}})")), "agent.openai.model has the wrong type");
  EXPECT_EQ(error_of(with_wecom(R"("logging":{"level":false})")), "logging.level has the wrong type");
  EXPECT_EQ(error_of(with_wecom(R"("gateway":[])")), "gateway must be an object");
  EXPECT_EQ(error_of(with_wecom(R"("agent":"echo")")), "agent must be an object");
  EXPECT_EQ(error_of(with_wecom(R"("agent":{"openai":"http://h"})")), "agent.openai must be an object");
  EXPECT_EQ(error_of(with_wecom(R"("logging":1)")), "logging must be an object");
  EXPECT_EQ(error_of(with_wecom(R"("agent":{"echo":[]})")), "agent.echo must be an object");
}

TEST(GatewayConfig, NotJson) {
  const std::string not_json =
      "the config file is not valid JSON (comments are allowed, trailing commas and unquoted keys are not)";
  EXPECT_EQ(error_of(""), not_json);
  EXPECT_EQ(error_of("{"), not_json);
  EXPECT_EQ(error_of("port: 1"), not_json);
  EXPECT_EQ(error_of(R"({"channels":{"wecom":{}},})"), not_json);  // trailing comma
  EXPECT_EQ(error_of(R"({channels:{"wecom":{}}})"), not_json);     // unquoted key
  EXPECT_EQ(error_of("/* unterminated comment"), not_json);
  EXPECT_EQ(error_of("[]"), "the config file must hold a JSON object");
  EXPECT_EQ(error_of("42"), "the config file must hold a JSON object");
  EXPECT_EQ(error_of("\"text\""), "the config file must hold a JSON object");
}

TEST(GatewayConfig, LoadsFromAFile) {
  TempDir dir;
  const auto file = dir.path() / "gateway.json";
  std::ofstream(file) << "// a file\n" << with_wecom(R"("gateway":{"port":1234})");
  EXPECT_EQ(load_gateway_config(file.string()).port, 1234);

  try {
    load_gateway_config((dir.path() / "missing.json").string());
    FAIL() << "a missing file was accepted";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), "cannot read config file " + (dir.path() / "missing.json").string());
  }
  std::ofstream(file, std::ios::trunc) << "{ broken";
  EXPECT_THROW(load_gateway_config(file.string()), ConfigError);
}

}  // namespace
}  // namespace cwc::gateway
