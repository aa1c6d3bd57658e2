// The reference gateway's configuration file: Clawdbot-shaped JSON with comments allowed.
//   gateway.{port, bind, threads, eventLoops, shutdownGraceMs, stateDir}, channels.wecom (passed to the
//   plugin verbatim), agent.{kind, echo, openai}, logging.{level, file}
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace cwc::gateway {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct EchoSettings {
  int delay_ms = 300;
};

struct OpenAiSettings {
  std::string base_url;        // e.g. https://api.openai.com/v1 or http://127.0.0.1:PORT/v1
  std::string api_key;         // literal key (prefer api_key_env)
  std::string api_key_env = "OPENAI_API_KEY";
  std::string model = "gpt-4o-mini";
  std::string system_prompt;
  int timeout_seconds = 60;
  int max_history = 20;        // messages kept per session (user + assistant)
};

struct GatewayConfig {
  int port = 18789;
  std::string bind = "127.0.0.1";
  int threads = 64;
  int event_loops = 0;           // 0: three per core (KeepAliveServer)
  int shutdown_grace_ms = 3000;
  std::string state_dir;        // default: $HOME/.clawdbot-wecom
  std::string agent_kind = "echo";
  int agent_concurrency = 8;
  EchoSettings echo;
  OpenAiSettings openai;
  std::string log_level = "info";
  std::string log_file;
  nlohmann::json wecom;         // channels.wecom, verbatim
};

// Parses the file's text. Throws ConfigError naming the key.
GatewayConfig parse_gateway_config(const std::string& text);
// Reads and parses a file. Throws ConfigError.
GatewayConfig load_gateway_config(const std::string& path);

}  // namespace cwc::gateway
