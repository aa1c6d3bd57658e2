// End-to-end: the real clawdbot-wecom-gateway binary (which dlopens the real plugin) on a free
// loopback port, driven by the real wecom-sim binary and by direct HTTP for malformed requests.
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "integration/process.h"

#include "support/temp_dir.h"

namespace cwc::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kToken = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo";
constexpr const char* kAesKey = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt";
constexpr const char* kOtherKey = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

json base_config() {
  return {{"gateway", {{"port", 0}, {"bind", "127.0.0.1"}, {"threads", 8}, {"shutdownGraceMs", 1500}}},
          {"channels",
           {{"wecom",
             {{"enabled", true},
              {"webhookPath", "/wecom"},
              {"token", kToken},
              {"encodingAESKey", kAesKey},
              {"receiveId", ""},
              {"dm", {{"policy", "open"}, {"allowFrom", {"*"}}}}}}}},
          {"agent", {{"kind", "echo"}, {"echo", {{"delayMs", 100}}}}}};
}

class Gateway {
 public:
  Gateway(const fs::path& dir, json config) : dir_(dir) {
    config_path_ = dir / "gateway.json";
    // Downloaded media stays inside the test's directory (removed with it).
    if (config.contains("channels") && config["channels"].is_object() && config["channels"].contains("wecom")) {
      auto& wecom = config["channels"]["wecom"];
      if (wecom.is_object() && !wecom.contains("mediaDir")) wecom["mediaDir"] = (dir / "media").string();
    }
    std::ofstream(config_path_) << "// written by the integration test\n" << config.dump(2);
    process_ = std::make_unique<Process>(
        std::vector<std::string>{CWC_GATEWAY_BIN, "run", "--config", config_path_.string(), "--state-dir",
                                 (dir / "state").string(), "--log-level", "debug"},
        dir / "gateway.out", dir / "gateway.log");
    const std::regex listening(R"(listening on http://127\.0\.0\.1:(\d+))");
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      std::smatch m;
      const std::string text = log();
      if (std::regex_search(text, m, listening)) {
        port_ = std::stoi(m[1]);
        break;
      }
      if (!process_->running()) break;
      std::this_thread::sleep_for(20ms);
    }
    if (port_ == 0) throw std::runtime_error("gateway did not start:\n" + log());
    // The listener is bound before the log line; wait until it answers.
    httplib::Client client("127.0.0.1", port_);
    for (int i = 0; i < 100; ++i) {
      if (auto res = client.Get("/healthz"); res && res->status == 200) return;
      std::this_thread::sleep_for(20ms);
    }
    throw std::runtime_error("gateway does not answer /healthz:\n" + log());
  }

  ~Gateway() {
    if (process_->running()) stop();
  }

  int stop(std::chrono::milliseconds timeout = 15s) {
    process_->signal(SIGTERM);
    return process_->wait(timeout);
  }

  std::string url(const std::string& path = "/wecom") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::string log() const { return slurp(dir_ / "gateway.log"); }
  int port() const { return port_; }
  const fs::path& config_path() const { return config_path_; }
  Process& process() { return *process_; }

  json status() const {
    httplib::Client client("127.0.0.1", port_);
    auto res = client.Get("/status");
    if (!res || res->status != 200) return nullptr;
    return json::parse(res->body);
  }

  httplib::Result get(const std::string& target) const {
    httplib::Client client("127.0.0.1", port_);
    return client.Get(target);
  }

 private:
  fs::path dir_;
  fs::path config_path_;
  std::unique_ptr<Process> process_;
  int port_ = 0;
};

class GatewayIntegration : public ::testing::Test {
 protected:
  RunResult sim(std::vector<std::string> args, std::chrono::milliseconds timeout = 30s) {
    args.insert(args.begin(), CWC_SIM_BIN);
    return run_command(args, dir_.path(), timeout);
  }

  // `wecom-sim send` with the default credentials against `url`.
  RunResult send(const std::string& url, std::vector<std::string> extra, const std::string& token = kToken,
                 const std::string& key = kAesKey) {
    std::vector<std::string> args = {"send", "--url", url, "--token", token, "--aes-key", key, "--interval-ms", "150",
                                     "--timeout", "20"};
    args.insert(args.end(), extra.begin(), extra.end());
    return sim(args);
  }

  TempDir dir_;
};

TEST_F(GatewayIntegration, VerifyUrlRoundTrip) {
  Gateway gw(dir_.path(), base_config());
  auto r = sim({"verify-url", "--url", gw.url(), "--token", kToken, "--aes-key", kAesKey});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("VerifyURL ok"), std::string::npos);
  EXPECT_NE(gw.log().find("VerifyURL succeeded on /wecom"), std::string::npos);
}

TEST_F(GatewayIntegration, TextRoundTripThroughStreamRefreshes) {
  Gateway gw(dir_.path(), base_config());
  auto r = send(gw.url(), {"--user", "zhangsan", "--text", "你好，Clawdbot", "--follow"});
  ASSERT_EQ(r.code, 0) << r.err << gw.log();
  EXPECT_EQ(r.out, "echo: 你好，Clawdbot\n");
  EXPECT_NE(r.err.find("refresh:"), std::string::npos);  // the answer came through refreshes
  EXPECT_NE(gw.log().find("wecom:zhangsan"), std::string::npos);
}

TEST_F(GatewayIntegration, GroupMessageUsesGroupTargetAndStripsMention) {
  Gateway gw(dir_.path(), base_config());
  auto r = send(gw.url(), {"--user", "lisi", "--group", "CHAT42", "--text", "@Clawdbot 总结一下", "--follow"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "echo: 总结一下\n");
  EXPECT_NE(gw.log().find("wecom:group:CHAT42"), std::string::npos);
}

TEST_F(GatewayIntegration, RetriedMsgidRunsTheAgentOnce) {
  Gateway gw(dir_.path(), base_config());
  auto r = send(gw.url(), {"--user", "u1", "--text", "once", "--msgid", "DUP-1", "--repeat", "3"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err.find("warning"), std::string::npos) << r.err;  // all three answers named one stream
  auto status = gw.status();
  ASSERT_FALSE(status.is_null());
  EXPECT_EQ(status["accounts"][0]["counters"]["messages"], 1);
  EXPECT_EQ(status["accounts"][0]["counters"]["requests"], 3);
}

TEST_F(GatewayIntegration, DocumentedErrorsWithLogLines) {
  Gateway gw(dir_.path(), base_config());
  auto wrong_token = send(gw.url(), {"--user", "u", "--text", "x"}, "WRONGTOKEN");
  EXPECT_EQ(wrong_token.code, 1);
  EXPECT_NE(wrong_token.err.find("401 invalid signature"), std::string::npos) << wrong_token.err;
  auto wrong_key = send(gw.url(), {"--user", "u", "--text", "x"}, kToken, kOtherKey);
  EXPECT_EQ(wrong_key.code, 1);
  EXPECT_NE(wrong_key.err.find("400 decrypt failed"), std::string::npos) << wrong_key.err;
  auto wrong_rid = send(gw.url(), {"--user", "u", "--text", "x", "--receive-id", "ww-corp"});
  EXPECT_EQ(wrong_rid.code, 1);
  EXPECT_NE(wrong_rid.err.find("receiveId mismatch"), std::string::npos) << wrong_rid.err;

  auto missing = gw.get("/wecom");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 400);
  EXPECT_EQ(missing->body.rfind("missing query params", 0), 0u) << missing->body;
  auto unknown = gw.get("/admin");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
  httplib::Client client("127.0.0.1", gw.port());
  auto put = client.Put("/wecom", "x", "text/plain");
  ASSERT_TRUE(put);
  EXPECT_EQ(put->status, 405);

  const std::string log = gw.log();
  EXPECT_NE(log.find("wecom[default]: 401 invalid signature"), std::string::npos) << log;
  EXPECT_NE(log.find("wecom[default]: 400 decrypt failed"), std::string::npos);
  EXPECT_NE(log.find("wecom[default]: 400 receiveId mismatch"), std::string::npos);
  EXPECT_NE(log.find("wecom[default]: 400 missing query params"), std::string::npos);
  EXPECT_NE(log.find("wecom[default]: 405 method not allowed"), std::string::npos);
  EXPECT_EQ(log.find(kAesKey), std::string::npos);
  EXPECT_EQ(gw.status()["accounts"][0]["counters"]["messages"], 0);
}

TEST_F(GatewayIntegration, TwoAccountsOnTwoPaths) {
  json config = base_config();
  config["channels"]["wecom"] = {
      {"dm", {{"policy", "open"}, {"allowFrom", {"*"}}}},
      {"defaultAccount", "default"},
      {"accounts",
       {{"default", {{"webhookPath", "/wecom"}, {"token", "TOKEN_A"}, {"encodingAESKey", kAesKey}}},
        {"team2", {{"webhookPath", "/wecom-team2"}, {"token", "TOKEN_B"}, {"encodingAESKey", kOtherKey}}}}}};
  Gateway gw(dir_.path(), config);
  auto a = send(gw.url("/wecom"), {"--user", "ua", "--text", "to A", "--follow"}, "TOKEN_A", kAesKey);
  EXPECT_EQ(a.out, "echo: to A\n") << a.err;
  auto b = send(gw.url("/wecom-team2"), {"--user", "ub", "--text", "to B", "--follow"}, "TOKEN_B", kOtherKey);
  EXPECT_EQ(b.out, "echo: to B\n") << b.err;
  auto crossed = send(gw.url("/wecom-team2"), {"--user", "ub", "--text", "x"}, "TOKEN_A", kAesKey);
  EXPECT_EQ(crossed.code, 1);
  EXPECT_NE(gw.log().find("wecom[team2]: 401 invalid signature"), std::string::npos);
}

TEST_F(GatewayIntegration, EnterChatWelcome) {
  json config = base_config();
  config["channels"]["wecom"]["welcomeText"] = "你好，我是 Clawdbot。";
  Gateway gw(dir_.path(), config);
  auto r = send(gw.url(), {"--user", "u", "--event", "enter_chat"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "你好，我是 Clawdbot。\n");
}

TEST_F(GatewayIntegration, AgentFailureIsVisibleToTheUser) {
  Gateway gw(dir_.path(), base_config());
  auto r = send(gw.url(), {"--user", "u", "--text", "/fail now", "--follow"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "echo agent failed on purpose\n");
}

TEST_F(GatewayIntegration, XmlEnvelopeRoundTrip) {
  Gateway gw(dir_.path(), base_config());
  auto r = send(gw.url(), {"--user", "u", "--text", "xml please", "--format", "xml", "--follow"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "echo: xml please\n");
}

TEST_F(GatewayIntegration, ImageIsServedEncryptedAndReachesTheAgent) {
  Gateway gw(dir_.path(), base_config());
  const fs::path image = dir_.path() / "photo.png";
  std::ofstream(image, std::ios::binary) << std::string("\x89PNG\r\n\x1a\n", 8) << std::string(300, 'x');
  auto r = send(gw.url(), {"--user", "u", "--image", image.string(), "--follow"});
  EXPECT_EQ(r.code, 0) << r.err;
  // The gateway downloaded it through callback_fetch, the plugin decrypted and checked it, the
  // echo agent got a file and sent the image back as a msg_item (md5 checked by wecom-sim).
  EXPECT_EQ(r.out, "echo: [image image/png 308 bytes]\n[reply image: 308 bytes, md5 verified]\n");
  EXPECT_NE(r.err.find("serving the encrypted image at http://127.0.0.1:"), std::string::npos);
}

TEST_F(GatewayIntegration, MediaThatIsNotAnImageIsRefusedWithAReasonForTheUser) {
  Gateway gw(dir_.path(), base_config());
  const fs::path fake = dir_.path() / "notes.png";
  std::ofstream(fake, std::ios::binary) << "this is text, not a PNG";
  auto r = send(gw.url(), {"--user", "u", "--image", fake.string(), "--follow"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "⚠️ Could not receive your image: it is not a valid image. Please send it again.\n");
  EXPECT_NE(gw.log().find("image 1 not received: decrypted bytes are not an image"), std::string::npos) << gw.log();
  EXPECT_EQ(gw.log().find("echo agent: run"), std::string::npos) << "the agent never saw it";
}

TEST_F(GatewayIntegration, AnswerBeyondTheStreamLimitContinuesThroughResponseUrl) {
  Gateway gw(dir_.path(), base_config());
  std::string text;
  while (text.size() < 21000) text += "长文本";
  auto r = send(gw.url(), {"--user", "u", "--text", text, "--follow"});
  ASSERT_EQ(r.code, 0) << r.err << gw.log();
  const std::string marker = "\n--- response_url ---\n";
  const std::size_t at = r.out.find(marker);
  ASSERT_NE(at, std::string::npos) << r.out.substr(0, 200);
  const std::string note = "\n\n(continued below)";
  const std::string streamed = r.out.substr(0, at);
  ASSERT_GE(streamed.size(), note.size());
  EXPECT_EQ(streamed.substr(streamed.size() - note.size()), note);
  EXPECT_LE(streamed.size(), 20480u);
  std::string rest = r.out.substr(at + marker.size());
  ASSERT_FALSE(rest.empty());
  rest.pop_back();  // the newline wecom-sim prints
  EXPECT_EQ(streamed.substr(0, streamed.size() - note.size()) + rest, "echo: " + text) << "nothing lost";
  for (int i = 0; i < 50 && gw.log().find("response_url delivered") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_NE(gw.log().find("response_url delivered " + std::to_string(rest.size()) + " bytes"), std::string::npos)
      << gw.log();
}

TEST_F(GatewayIntegration, PairingCodeThenApprovalThroughTheCli) {
  json config = base_config();
  config["channels"]["wecom"]["dm"] = {{"policy", "pairing"}};
  Gateway gw(dir_.path(), config);
  auto first = send(gw.url(), {"--user", "newbie", "--text", "hello", "--follow"});
  ASSERT_EQ(first.code, 0) << first.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(first.out, m, std::regex("Pairing code: ([A-Z0-9]{8})"))) << first.out;
  const std::string code = m[1];
  EXPECT_NE(gw.log().find("pairing code issued to unknown sender newbie"), std::string::npos);

  const std::string state = (dir_.path() / "state").string();
  auto list = run_command({CWC_GATEWAY_BIN, "pairing", "list", "wecom", "--config", gw.config_path().string(),
                           "--state-dir", state},
                          dir_.path());
  EXPECT_EQ(list.code, 0) << list.err;
  EXPECT_NE(list.out.find(code + "  user newbie"), std::string::npos) << list.out;
  auto approve = run_command({CWC_GATEWAY_BIN, "pairing", "approve", "wecom", code, "--config",
                              gw.config_path().string(), "--state-dir", state},
                             dir_.path());
  EXPECT_EQ(approve.code, 0) << approve.err;
  EXPECT_NE(approve.out.find("Approved WeCom user newbie"), std::string::npos);

  auto second = send(gw.url(), {"--user", "newbie", "--text", "now", "--follow"});
  EXPECT_EQ(second.out, "echo: now\n") << second.err;
}

TEST_F(GatewayIntegration, ChannelsStatusProbeAndPluginsList) {
  json config = base_config();
  Gateway gw(dir_.path(), config);
  // The CLI reads the same file; point it at the running gateway's port.
  config["gateway"]["port"] = gw.port();
  const fs::path cli_config = dir_.path() / "cli.json";
  std::ofstream(cli_config) << config.dump();
  auto status = run_command({CWC_GATEWAY_BIN, "channels", "status", "--probe", "--json", "--config",
                             cli_config.string(), "--state-dir", (dir_.path() / "state").string()},
                            dir_.path());
  ASSERT_EQ(status.code, 0) << status.out << status.err;
  auto doc = json::parse(status.out);
  EXPECT_EQ(doc["gatewayRunning"], true);
  EXPECT_EQ(doc["accounts"][0]["probe"]["ok"], true);
  EXPECT_EQ(doc["accounts"][0]["probe"]["network"]["ok"], true);
  auto plugins = run_command({CWC_GATEWAY_BIN, "plugins", "list"}, dir_.path());
  EXPECT_EQ(plugins.code, 0) << plugins.err;
  EXPECT_NE(plugins.out.find("wecom  WeCom"), std::string::npos) << plugins.out;
  EXPECT_NE(plugins.out.find("loaded"), std::string::npos);
}

TEST_F(GatewayIntegration, InvalidConfigIsRejectedWithThePreciseMessage) {
  json config = base_config();
  config["channels"]["wecom"]["encodingAESKey"] = std::string(42, 'a');
  const fs::path path = dir_.path() / "bad.json";
  std::ofstream(path) << config.dump();
  auto r = run_command({CWC_GATEWAY_BIN, "run", "--config", path.string(), "--port", "0"}, dir_.path(), 10s);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("channels.wecom.encodingAESKey must be 43 characters (got 42)"), std::string::npos) << r.err;
}

// A tiny OpenAI-compatible SSE endpoint on loopback.
class FakeModel {
 public:
  // status 0: accept the request and never answer (a hung model endpoint), until destruction.
  FakeModel(std::vector<std::string> chunks, int status = 200) {
    server_.Post("/v1/chat/completions", [chunks, status, this](const httplib::Request&, httplib::Response& res) {
      ++requests_;
      if (status == 0) {
        while (!closing_) std::this_thread::sleep_for(10ms);
        return;
      }
      res.status = status;
      if (status != 200) {
        res.set_content(R"({"error":{"message":"model exploded"}})", "application/json");
        return;
      }
      std::string body;
      for (const auto& c : chunks) {
        body += "data: " + json({{"choices", {{{"delta", {{"content", c}}}}}}}).dump() + "\n\n";
      }
      body += "data: [DONE]\n\n";
      res.set_content(body, "text/event-stream");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    for (int i = 0; i < 200 && !server_.is_running(); ++i) std::this_thread::sleep_for(5ms);
  }
  ~FakeModel() {
    closing_ = true;
    server_.stop();
    thread_.join();
  }
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }
  int requests() const { return requests_.load(); }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<int> requests_{0};
  std::atomic<bool> closing_{false};
};

TEST_F(GatewayIntegration, OpenAiAgentStreamsTheModelAnswer) {
  FakeModel model({"Hello", " from", " the model"});
  json config = base_config();
  config["agent"] = {{"kind", "openai"}, {"openai", {{"baseUrl", model.base_url()}, {"apiKey", "sk-test"}, {"model", "fake-1"}}}};
  Gateway gw(dir_.path(), config);
  auto r = send(gw.url(), {"--user", "u", "--text", "hi", "--follow"});
  EXPECT_EQ(r.code, 0) << r.err << gw.log();
  EXPECT_EQ(r.out, "Hello from the model\n");
  EXPECT_EQ(model.requests(), 1);
  EXPECT_EQ(gw.log().find("sk-test"), std::string::npos);
}

TEST_F(GatewayIntegration, OpenAiAgentErrorIsReadable) {
  FakeModel model({}, 500);
  json config = base_config();
  config["agent"] = {{"kind", "openai"}, {"openai", {{"baseUrl", model.base_url()}, {"model", "fake-1"}}}};
  Gateway gw(dir_.path(), config);
  auto r = send(gw.url(), {"--user", "u", "--text", "hi", "--follow"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "The model endpoint failed: HTTP 500: model exploded\n");
  EXPECT_NE(gw.log().find("openai agent: HTTP 500"), std::string::npos);
}

TEST_F(GatewayIntegration, CleanShutdownWithAStreamOpen) {
  json config = base_config();
  config["agent"]["echo"]["delayMs"] = 20000;  // the agent is mid-answer when SIGTERM arrives
  config["gateway"]["shutdownGraceMs"] = 500;
  Gateway gw(dir_.path(), config);
  auto first = send(gw.url(), {"--user", "u", "--text", "slow"});
  ASSERT_EQ(first.code, 0) << first.err;
  const std::string stream_id = json::parse(first.out)["stream"]["id"];
  // Refreshes keep racing the shutdown.
  std::atomic<bool> stop{false};
  std::thread refresher([&] {
    while (!stop) {
      send(gw.url(), {"--user", "u", "--text", "racing"});
      std::this_thread::sleep_for(50ms);
    }
  });
  std::this_thread::sleep_for(200ms);
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(gw.stop(10s), 0) << gw.log();
  stop = true;
  refresher.join();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  const std::string log = gw.log();
  EXPECT_NE(log.find("received SIGTERM"), std::string::npos);
  EXPECT_NE(log.find("stopped"), std::string::npos);
}

TEST_F(GatewayIntegration, ShutdownDoesNotWaitForAHungModel) {
  FakeModel model({}, /*status=*/0);
  json config = base_config();
  config["gateway"]["shutdownGraceMs"] = 300;
  config["agent"] = {{"kind", "openai"},
                     {"openai", {{"baseUrl", model.base_url()}, {"model", "fake-1"}, {"timeoutSeconds", 120}}}};
  Gateway gw(dir_.path(), config);
  auto first = send(gw.url(), {"--user", "u", "--text", "hello?"});
  ASSERT_EQ(first.code, 0) << first.err;
  for (int i = 0; i < 100 && model.requests() == 0; ++i) std::this_thread::sleep_for(20ms);
  ASSERT_EQ(model.requests(), 1);
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(gw.stop(10s), 0) << gw.log();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 4s);  // not the 120 s read timeout
}

}  // namespace
}  // namespace cwc::testing
