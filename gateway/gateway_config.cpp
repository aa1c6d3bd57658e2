#include "gateway_config.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace cwc::gateway {
namespace {

using nlohmann::json;

// `parent` is the dotted path of `root` ("" at the top), so errors name the full key.
const json* section(const json& root, const char* key, const std::string& parent = "") {
  auto it = root.find(key);
  if (it == root.end() || it->is_null()) return nullptr;
  if (!it->is_object()) throw ConfigError((parent.empty() ? "" : parent + ".") + key + " must be an object");
  return &*it;
}

template <class T>
void read(const json& obj, const char* key, const std::string& path, T& target) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return;
  try {
    target = it->get<T>();
  } catch (const json::exception&) {
    throw ConfigError(path + "." + key + " has the wrong type");
  }
}

void read_int(const json& obj, const char* key, const std::string& path, int& target, int min, int max) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return;
  if (!it->is_number_integer()) throw ConfigError(path + "." + key + " must be an integer");
  const auto v = it->get<long long>();
  if (v < min || v > max) {
    throw ConfigError(path + "." + key + " must be between " + std::to_string(min) + " and " + std::to_string(max));
  }
  target = static_cast<int>(v);
}

}  // namespace

GatewayConfig parse_gateway_config(const std::string& text) {
  json root = json::parse(text, nullptr, /*allow_exceptions=*/false, /*ignore_comments=*/true);
  if (root.is_discarded()) {
    throw ConfigError("the config file is not valid JSON (comments are allowed, trailing commas and unquoted keys are not)");
  }
  if (!root.is_object()) throw ConfigError("the config file must hold a JSON object");
  GatewayConfig config;
  if (const json* gw = section(root, "gateway")) {
    read_int(*gw, "port", "gateway", config.port, 0, 65535);
    read(*gw, "bind", "gateway", config.bind);
    read_int(*gw, "threads", "gateway", config.threads, 2, 1024);
    read_int(*gw, "eventLoops", "gateway", config.event_loops, 0, 256);
    read_int(*gw, "shutdownGraceMs", "gateway", config.shutdown_grace_ms, 0, 600000);
    read(*gw, "stateDir", "gateway", config.state_dir);
  }
  const json* channels = section(root, "channels");
  if (!channels || !channels->contains("wecom") || !(*channels)["wecom"].is_object()) {
    throw ConfigError("channels.wecom is missing: add the WeCom bot's token and encodingAESKey (see docs/configuration.md)");
  }
  config.wecom = (*channels)["wecom"];
  if (const json* agent = section(root, "agent")) {
    read(*agent, "kind", "agent", config.agent_kind);
    read_int(*agent, "concurrency", "agent", config.agent_concurrency, 1, 256);
    if (config.agent_kind != "echo" && config.agent_kind != "openai") {
      throw ConfigError("agent.kind must be \"echo\" or \"openai\" (got \"" + config.agent_kind + "\")");
    }
    if (const json* echo = section(*agent, "echo", "agent")) read_int(*echo, "delayMs", "agent.echo", config.echo.delay_ms, 0, 60000);
    if (const json* openai = section(*agent, "openai", "agent")) {
      auto& o = config.openai;
      read(*openai, "baseUrl", "agent.openai", o.base_url);
      read(*openai, "apiKey", "agent.openai", o.api_key);
      read(*openai, "apiKeyEnv", "agent.openai", o.api_key_env);
      read(*openai, "model", "agent.openai", o.model);
      read(*openai, "systemPrompt", "agent.openai", o.system_prompt);
      read_int(*openai, "timeoutSeconds", "agent.openai", o.timeout_seconds, 1, 3600);
      read_int(*openai, "maxHistory", "agent.openai", o.max_history, 0, 1000);
    }
    if (config.agent_kind == "openai" && config.openai.base_url.empty()) {
      throw ConfigError("agent.openai.baseUrl is required with agent.kind \"openai\" (e.g. https://api.openai.com/v1)");
    }
  }
  if (const json* logging = section(root, "logging")) {
    read(*logging, "level", "logging", config.log_level);
    read(*logging, "file", "logging", config.log_file);
  }
  if (config.state_dir.empty()) {
    const char* home = std::getenv("HOME");
    config.state_dir = std::string(home && *home ? home : ".") + "/.clawdbot-wecom";
  }
  return config;
}

GatewayConfig load_gateway_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError("cannot read config file " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return parse_gateway_config(text.str());
}

}  // namespace cwc::gateway
