// What the gateway's log may contain, at every level it offers. The real clawdbot-wecom-gateway
// (dlopening the real plugin) runs on a free loopback port at --log-level info, debug and trace;
// the real wecom-sim drives VerifyURL, a pairing code and its approval, DMs and a group message
// through stream refreshes, an XML callback, a WeCom retry, an image, enter_chat, a wrong token,
// a wrong key, a `channels status --probe` with the wrong key, and hand-posted callbacks. Then:
//   - no level ever shows the Token, the EncodingAESKey (nor its decoded key bytes as raw bytes,
//     hex or base64, nor any 16-character piece of them), a decrypted message text, a reply text
//     (echo answer, pairing code), a response_url, a media URL or a ciphertext;
//   - the debug level adds only the line shapes listed in debug_shapes() (docs/security.md,
//     "The log"): ids, targets, stream ids, sizes; nothing is logged at trace;
//   - at info, no debug or trace line is written at all.
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "integration/process.h"

#include "support/temp_dir.h"

namespace cwc::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kToken = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo";
constexpr const char* kAesKey = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt";
// The key a misconfigured client (the probe CLI, the simulator) uses: a secret too.
constexpr const char* kOtherKey = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
constexpr const char* kWrongToken = "WrongTokenZq8Xv3Lm5Np7Rt9Wy2Ab4Cd";

// Decrypted message texts: each must stay inside the encrypted traffic.
constexpr const char* kPairingText = "first words SEC-7a1c 配对前的消息";
constexpr const char* kDmText = "the DM text SEC-2b9e 机密的私聊内容";
constexpr const char* kGroupText = "the group text SEC-5d3f 群里的机密";
constexpr const char* kXmlText = "the XML text SEC-8e4a";
constexpr const char* kRetryText = "the retried text SEC-1f6b";
constexpr const char* kWrongTokenText = "sent with a wrong token SEC-3c7d";
constexpr const char* kWrongKeyText = "sent with a wrong key SEC-9a2e";
constexpr const char* kPostedText = "hand-posted text SEC-4b8c";
constexpr const char* kResponseUrl = "https://qyapi.weixin.qq.com/cgi-bin/aibot/response?response_code=RESP-SEC-6d0f";
constexpr const char* kBadChatText = "text of a rejected message SEC-0e5a";

// An independent base64 decoder (the oracle must not be the code under test).
std::string base64_decode(const std::string& text) {
  static const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  unsigned bits = 0;
  int count = 0;
  for (char c : text) {
    const auto pos = alphabet.find(c);
    if (pos == std::string::npos) break;  // '=' ends the data
    bits = (bits << 6) | static_cast<unsigned>(pos);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out += static_cast<char>((bits >> count) & 0xFF);
    }
  }
  return out;
}

std::string base64_encode(const std::string& bytes) {
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned n = static_cast<unsigned char>(bytes[i]) << 16 | static_cast<unsigned char>(bytes[i + 1]) << 8 |
                       static_cast<unsigned char>(bytes[i + 2]);
    for (int s : {18, 12, 6, 0}) out += alphabet[(n >> s) & 63];
  }
  if (i + 1 == bytes.size()) {
    const unsigned n = static_cast<unsigned char>(bytes[i]) << 16;
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += "==";
  } else if (i + 2 == bytes.size()) {
    const unsigned n = static_cast<unsigned char>(bytes[i]) << 16 | static_cast<unsigned char>(bytes[i + 1]) << 8;
    for (int s : {18, 12, 6}) out += alphabet[(n >> s) & 63];
    out += "=";
  }
  return out;
}

std::string hex(const std::string& bytes, bool upper) {
  const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

struct Secret {
  std::string what;
  std::string value;
};

// Every form of the credentials a log line could carry, in pieces: a 16-character window of any
// of them (8 bytes of the raw key) is enough to fail.
std::vector<Secret> credential_secrets() {
  std::vector<Secret> out;
  auto windows = [&out](const std::string& what, const std::string& value, std::size_t width) {
    for (std::size_t i = 0; i + width <= value.size(); ++i) out.push_back({what, value.substr(i, width)});
  };
  windows("token", kToken, 16);
  windows("wrong token", kWrongToken, 16);
  for (const auto& [name, key] : {std::pair<std::string, std::string>{"encodingAESKey", kAesKey},
                                  std::pair<std::string, std::string>{"probe/sim encodingAESKey", kOtherKey}}) {
    const std::string bytes = base64_decode(key + "=");
    EXPECT_EQ(bytes.size(), 32u);
    windows(name, key, 16);
    windows(name + " as canonical base64", base64_encode(bytes), 16);
    windows(name + " bytes in hex", hex(bytes, false), 16);
    windows(name + " bytes in HEX", hex(bytes, true), 16);
    windows(name + " raw bytes", bytes, 8);
  }
  return out;
}

// A valid 1x1 PNG (the media path checks the image signature after decrypting).
std::string png_1x1() {
  return std::string("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0\x90\x77\x53\xde"
                     "\0\0\0\x0cIDATx\x9c\x63\x60\x60\x60\x00\x00\x00\x04\x00\x01\xf6\x17\x38\x55"
                     "\0\0\0\0IEND\xae\x42\x60\x82",
                     69);
}

json gateway_config() {
  return {{"gateway", {{"port", 0}, {"bind", "127.0.0.1"}, {"threads", 8}, {"shutdownGraceMs", 1000}}},
          {"channels",
           {{"wecom",
             {{"enabled", true},
              {"webhookPath", "/wecom"},
              {"token", kToken},
              {"encodingAESKey", kAesKey},
              {"receiveId", ""},
              {"welcomeText", "welcome SEC-WELCOME"},
              {"dm", {{"policy", "pairing"}}}}}}},
          {"agent", {{"kind", "echo"}, {"echo", {{"delayMs", 50}}}}}};
}

// The gateway at one log level, its stderr and --log-file both kept.
class Gateway {
 public:
  Gateway(const fs::path& dir, const std::string& level) : dir_(dir) {
    config_path_ = dir / "gateway.json";
    std::ofstream(config_path_) << gateway_config().dump(2);
    process_ = std::make_unique<Process>(
        std::vector<std::string>{CWC_GATEWAY_BIN, "run", "--config", config_path_.string(), "--state-dir",
                                 (dir / "state").string(), "--log-level", level, "--log-file",
                                 (dir / "gateway-file.log").string()},
        dir / "gateway.out", dir / "gateway.log");
    const std::regex listening(R"(listening on http://127\.0\.0\.1:(\d+))");
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline && port_ == 0) {
      std::smatch m;
      const std::string text = log();
      if (std::regex_search(text, m, listening)) port_ = std::stoi(m[1]);
      else if (!process_->running()) break;
      else std::this_thread::sleep_for(20ms);
    }
    if (port_ == 0) throw std::runtime_error("gateway did not start:\n" + log());
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
  int stop() {
    process_->signal(SIGTERM);
    return process_->wait(15s);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/wecom"; }
  int port() const { return port_; }
  std::string log() const { return slurp(dir_ / "gateway.log"); }
  std::string file_log() const { return slurp(dir_ / "gateway-file.log"); }
  const fs::path& config_path() const { return config_path_; }

 private:
  fs::path dir_;
  fs::path config_path_;
  std::unique_ptr<Process> process_;
  int port_ = 0;
};

struct LogLine {
  std::string level;  // trace, debug, info, warning, error, critical
  std::string text;   // after the level
};

// "2026-11-25 06:45:24.123 debug wecom[default]: ..." (the gateway's spdlog pattern).
std::vector<LogLine> parse_log(const std::string& log, std::vector<std::string>* unparsed) {
  static const std::regex line_re(R"(^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} (\w+) +(.*)$)");
  std::vector<LogLine> lines;
  std::istringstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_match(line, m, line_re)) lines.push_back({m[1], m[2]});
    else unparsed->push_back(line);
  }
  return lines;
}

// The only lines allowed below info (docs/security.md, "The log"): identifiers and sizes, never
// content. The last three come with the media/response_url/event work (echo agent, media store,
// host events); the event payload (user feedback text, card choices) is user content and is
// allowed at debug only.
struct DebugShape {
  const char* name;
  std::regex pattern;
};
const std::vector<DebugShape>& debug_shapes() {
  static const std::vector<DebugShape> shapes = {
      {"inbound", std::regex(R"(^wecom\[[^\]]+\]: inbound [a-z_]+ msgid=\S+ wecom:(group:)?\S+ stream=s[0-9a-f]{32}$)")},
      {"enter_chat", std::regex(R"(^wecom\[[^\]]+\]: enter_chat from \S+$)")},
      {"media stored", std::regex(R"(^wecom\[[^\]]+\]: msgid=\S+: \S+ \d+ stored \([^,]+, \d+ bytes\)$)")},
      {"echo agent run", std::regex(R"(^echo agent: run msgid=\S+ stream=s[0-9a-f]{32}$)")},
      {"echo agent image", std::regex(R"(^echo agent: image not echoed: .*$)")},
      {"event payload", std::regex(R"(^wecom\[[^\]]+\]: event \S+ from \S+: \{.*\}$)")},
  };
  return shapes;
}
const char* debug_shape_of(const std::string& text) {
  for (const auto& shape : debug_shapes()) {
    if (std::regex_match(text, shape.pattern)) return shape.name;
  }
  return nullptr;
}

class SecretsLog : public ::testing::TestWithParam<std::string> {
 protected:
  RunResult sim(std::vector<std::string> args) {
    args.insert(args.begin(), CWC_SIM_BIN);
    return run_command(args, dir_.path(), 60s);
  }
  RunResult send(const std::string& url, std::vector<std::string> extra, const std::string& token = kToken,
                 const std::string& key = kAesKey) {
    std::vector<std::string> args = {"send", "--url", url, "--token", token, "--aes-key", key, "--interval-ms", "100",
                                     "--timeout", "20"};
    args.insert(args.end(), extra.begin(), extra.end());
    return sim(args);
  }
  RunResult gateway_cli(std::vector<std::string> args) {
    args.insert(args.begin(), CWC_GATEWAY_BIN);
    return run_command(args, dir_.path(), 30s);
  }
  // A correctly sealed callback of `plaintext` from `wecom-sim encrypt`: {encrypt, msg_signature, timestamp, nonce}.
  json seal(const json& plaintext) {
    auto r = sim({"encrypt", "--token", kToken, "--aes-key", kAesKey, "--plaintext", plaintext.dump()});
    EXPECT_EQ(r.code, 0) << r.err;
    return json::parse(r.out);
  }
  static std::string query_of(const json& sealed, const std::string& signature) {
    return "/wecom?msg_signature=" + signature + "&timestamp=" + sealed["timestamp"].get<std::string>() +
           "&nonce=" + sealed["nonce"].get<std::string>();
  }

  TempDir dir_;
  std::vector<Secret> secrets_ = credential_secrets();
  std::vector<std::string> cli_outputs_;  // stdout+stderr of every gateway CLI run
};

TEST_P(SecretsLog, NoCredentialOrMessageTextAtAnyLevel) {
  const std::string level = GetParam();
  Gateway gw(dir_.path(), level);

  // VerifyURL.
  auto verify = sim({"verify-url", "--url", gw.url(), "--token", kToken, "--aes-key", kAesKey});
  EXPECT_EQ(verify.code, 0) << verify.err;

  // Pairing: the first DM gets a code; the CLI approves it.
  auto first = send(gw.url(), {"--user", "newbie", "--text", kPairingText, "--follow"});
  ASSERT_EQ(first.code, 0) << first.err << gw.log();
  std::smatch m;
  ASSERT_TRUE(std::regex_search(first.out, m, std::regex("Pairing code: ([A-Z0-9]{8})"))) << first.out;
  const std::string code = m[1];
  const std::string state = (dir_.path() / "state").string();
  auto list = gateway_cli({"pairing", "list", "wecom", "--config", gw.config_path().string(), "--state-dir", state});
  EXPECT_EQ(list.code, 0) << list.err;
  auto approve =
      gateway_cli({"pairing", "approve", "wecom", code, "--config", gw.config_path().string(), "--state-dir", state});
  EXPECT_EQ(approve.code, 0) << approve.err;
  cli_outputs_.insert(cli_outputs_.end(), {list.out, list.err, approve.out, approve.err});

  // A DM and a group message through stream refreshes; XML; a WeCom retry; enter_chat.
  auto dm = send(gw.url(), {"--user", "newbie", "--text", kDmText, "--follow"});
  EXPECT_EQ(dm.out, std::string("echo: ") + kDmText + "\n") << dm.err;
  EXPECT_NE(dm.err.find("refresh:"), std::string::npos) << "the answer came through refreshes";
  auto group = send(gw.url(), {"--user", "lisi", "--group", "CHAT42", "--text", std::string("@Clawdbot ") + kGroupText,
                               "--follow"});
  EXPECT_EQ(group.out, std::string("echo: ") + kGroupText + "\n") << group.err;
  auto xml = send(gw.url(), {"--user", "newbie", "--text", kXmlText, "--format", "xml", "--follow"});
  EXPECT_EQ(xml.out, std::string("echo: ") + kXmlText + "\n") << xml.err;
  auto retry = send(gw.url(), {"--user", "newbie", "--text", kRetryText, "--msgid", "RETRY-1", "--repeat", "2"});
  EXPECT_EQ(retry.code, 0) << retry.err;
  // An image: the simulator serves it encrypted on loopback; that URL is a bearer URL too.
  const fs::path image = dir_.path() / "photo.png";
  std::ofstream(image, std::ios::binary) << png_1x1();
  auto picture = send(gw.url(), {"--user", "newbie", "--image", image.string(), "--follow"});
  EXPECT_EQ(picture.code, 0) << picture.err;
  std::smatch media_url;
  ASSERT_TRUE(std::regex_search(picture.err, media_url, std::regex(R"(serving the encrypted image at (\S+))")))
      << picture.err;
  auto welcome = send(gw.url(), {"--user", "newbie", "--event", "enter_chat"});
  EXPECT_EQ(welcome.out, "welcome SEC-WELCOME\n") << welcome.err;

  // A wrong token and a wrong key.
  auto wrong_token = send(gw.url(), {"--user", "newbie", "--text", kWrongTokenText}, kWrongToken);
  EXPECT_EQ(wrong_token.code, 1);
  EXPECT_NE(wrong_token.err.find("401 invalid signature"), std::string::npos) << wrong_token.err;
  auto wrong_key = send(gw.url(), {"--user", "newbie", "--text", kWrongKeyText}, kToken, kOtherKey);
  EXPECT_EQ(wrong_key.code, 1);
  EXPECT_NE(wrong_key.err.find("400 decrypt failed"), std::string::npos) << wrong_key.err;

  // `channels status --probe` against the running gateway: with the right key, then the wrong one.
  json cli_config = gateway_config();
  cli_config["gateway"]["port"] = gw.port();
  const fs::path good_cli = dir_.path() / "cli-good.json";
  std::ofstream(good_cli) << cli_config.dump();
  cli_config["channels"]["wecom"]["encodingAESKey"] = kOtherKey;
  const fs::path bad_cli = dir_.path() / "cli-bad-key.json";
  std::ofstream(bad_cli) << cli_config.dump();
  for (const auto& [path, expect_ok] : {std::pair{good_cli, true}, std::pair{bad_cli, false}}) {
    for (const bool as_json : {false, true}) {
      std::vector<std::string> args = {"channels", "status", "--probe", "--config", path.string(), "--state-dir", state,
                                       "--log-level", level};
      if (as_json) args.push_back("--json");
      auto probe = gateway_cli(args);
      EXPECT_EQ(probe.code, expect_ok ? 0 : 1) << probe.out << probe.err;
      cli_outputs_.insert(cli_outputs_.end(), {probe.out, probe.err});
    }
  }

  // Hand-posted callbacks: a valid one with a response_url, the same with a broken signature,
  // and a correctly signed message the parser rejects.
  httplib::Client client("127.0.0.1", gw.port());
  const json message = {{"msgid", "POSTED-1"}, {"aibotid", "BOT"}, {"chattype", "single"},
                        {"from", {{"userid", "newbie"}}}, {"response_url", kResponseUrl},
                        {"msgtype", "text"}, {"text", {{"content", kPostedText}}}};
  const json sealed = seal(message);
  const std::string body = json({{"encrypt", sealed["encrypt"]}}).dump();
  std::string bad_signature = sealed["msg_signature"].get<std::string>();
  bad_signature[0] = bad_signature[0] == '0' ? '1' : '0';
  auto forged = client.Post(query_of(sealed, bad_signature), body, "application/json");
  ASSERT_TRUE(forged);
  EXPECT_EQ(forged->status, 401);
  auto posted = client.Post(query_of(sealed, sealed["msg_signature"]), body, "application/json");
  ASSERT_TRUE(posted);
  EXPECT_EQ(posted->status, 200);
  json bad_message = message;
  bad_message["msgid"] = "POSTED-2";
  bad_message["chattype"] = "channel";
  bad_message["text"]["content"] = kBadChatText;
  const json sealed_bad = seal(bad_message);
  auto rejected = client.Post(query_of(sealed_bad, sealed_bad["msg_signature"]),
                              json({{"encrypt", sealed_bad["encrypt"]}}).dump(), "application/json");
  ASSERT_TRUE(rejected);
  EXPECT_EQ(rejected->status, 400);
  EXPECT_EQ(rejected->body.rfind("invalid message", 0), 0u) << rejected->body;

  ASSERT_EQ(gw.stop(), 0) << gw.log();  // flushes the file sink
  const std::string log = gw.log();
  const std::string file_log = gw.file_log();

  // The traffic really happened and was logged where it should be.
  EXPECT_NE(log.find("VerifyURL succeeded on /wecom"), std::string::npos) << log;
  EXPECT_NE(log.find("pairing code issued to unknown sender newbie"), std::string::npos) << log;
  EXPECT_NE(log.find("duplicate msgid=RETRY-1"), std::string::npos) << log;
  EXPECT_NE(log.find("wecom[default]: 401 invalid signature"), std::string::npos) << log;
  EXPECT_NE(log.find("wecom[default]: 400 decrypt failed"), std::string::npos) << log;
  EXPECT_NE(log.find("wecom[default]: 400 invalid message"), std::string::npos) << log;
  EXPECT_NE(log.find("GET /wecom from 127.0.0.1"), std::string::npos) << "the wrong-key probe reached the gateway\n"
                                                                      << log;
  EXPECT_NE(file_log.find("VerifyURL succeeded on /wecom"), std::string::npos) << file_log;

  // Nothing secret, in either sink, nor in what the CLI printed.
  std::vector<Secret> secrets = secrets_;
  for (const char* text : {kPairingText, kDmText, kGroupText, kXmlText, kRetryText, kWrongTokenText, kWrongKeyText,
                           kPostedText, kBadChatText}) {
    secrets.push_back({"decrypted message text", text});
    secrets.push_back({"decrypted message text (marker)", std::string(text).substr(std::string(text).find("SEC-"), 8)});
  }
  secrets.push_back({"response_url", kResponseUrl});
  secrets.push_back({"response_url code", "RESP-SEC-6d0f"});
  secrets.push_back({"pairing code", code});
  secrets.push_back({"media url", media_url[1]});
  secrets.push_back({"welcome reply", "SEC-WELCOME"});
  secrets.push_back({"ciphertext", sealed["encrypt"].get<std::string>().substr(0, 32)});
  secrets.push_back({"ciphertext", sealed_bad["encrypt"].get<std::string>().substr(0, 32)});
  for (const auto& s : secrets) {
    EXPECT_EQ(log.find(s.value), std::string::npos) << s.what << " \"" << s.value << "\" is in the log:\n" << log;
    EXPECT_EQ(file_log.find(s.value), std::string::npos) << s.what << " is in the --log-file";
  }
  for (const auto& out : cli_outputs_) {
    for (const auto& s : secrets_) EXPECT_EQ(out.find(s.value), std::string::npos) << s.what << " printed by the CLI:\n" << out;
  }

  // Below info: exactly the documented line shapes; at info: nothing below info.
  std::vector<std::string> unparsed;
  const auto lines = parse_log(log, &unparsed);
  EXPECT_TRUE(unparsed.empty()) << "a log line without the timestamp/level prefix: " << unparsed.front();
  std::size_t debug_lines = 0;
  std::set<std::string> seen;
  for (const auto& line : lines) {
    if (line.level == "trace") ADD_FAILURE() << "nothing is logged at trace: " << line.text;
    if (line.level != "debug") continue;
    ++debug_lines;
    const char* shape = debug_shape_of(line.text);
    if (shape) seen.insert(shape);
    else ADD_FAILURE() << "undocumented debug line: " << line.text;
  }
  if (level == "info") {
    EXPECT_EQ(debug_lines, 0u);
  } else {
    EXPECT_EQ(seen.count("inbound"), 1u) << "debug really is on\n" << log;
    EXPECT_EQ(seen.count("enter_chat"), 1u) << log;
    EXPECT_NE(log.find("inbound text msgid=POSTED-1 wecom:newbie stream=s"), std::string::npos) << log;
    EXPECT_NE(log.find("wecom:group:CHAT42"), std::string::npos) << log;
  }
}

INSTANTIATE_TEST_SUITE_P(Levels, SecretsLog, ::testing::Values("info", "debug", "trace"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace cwc::testing
