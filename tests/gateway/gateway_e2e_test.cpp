// End-to-end tests of the clawdbot-wecom-gateway binary on its own (no simulator): it is started
// as a child process on a free loopback port with the real plugin, driven over HTTP with WeCom's
// published vectors, and stopped with SIGTERM. Also the CLI's error exits and the fake-openai
// executable. Every wait is bounded; children are killed by pid if a test fails early.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
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

// tests/data/test-vectors.json: "verify-url" (receiveId = the corp id) and "bot-text-single"
// (receiveId "", like intelligent bots).
constexpr const char* kToken = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo";
constexpr const char* kAesKey = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt";
constexpr const char* kCorpId = "ww1436e0e65a779aee";
constexpr const char* kVerifyQuery =
    "msg_signature=012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb&timestamp=1476416373&nonce=47744683&echostr="
    "fsi1xnbH4yQh0%2BPJxcOdhhK6TDXkjMyhEPA7xB2TGz6b%2Bg7xyAbEkRxN%2F3cNXW9qdqjnoVzEtpbhnFyq6SVHyA%3D%3D";
constexpr const char* kVerifyPlaintext = "1288432023552776189";
constexpr const char* kBotQuery = "msg_signature=6513407f2b64d919d82437ac0c654b31cd84bfa7&timestamp=1732500000&nonce=8427661";
constexpr const char* kBotEncrypt =
    "v4KnUEEcsXoqbTLvP+jC7koCVKpygsx4cczDiNHu6ofxkfzhGcqypNwNHFG5tdpoW7kq1Y46luy1uMeoIEH0/mAvEMl3K+FEGz0PVUd8g7mo36h1"
    "PaYRG5126J36BPuP/nZqtBZkjeu6eXeQKt+uuGpUKi7utV/VMD6/EYYhZeYhizJoat/8Y/F+xP4aRJlXJrDUlBSCxOVCfrITTz7zXQ/wdptvPM6D"
    "CiGmYKj5B6qB5MoXgv04/rgcfBkFXV2/5bupuTgll/4gU96gXY0XciAZYzyG3Lf48UL4u/fBiipva2xeWOMsuza+YHyf+ZiXztNCS+xdYiTXQtS6"
    "FbsZpvCUWGMDbyUu3X85pP7AWe5uZ1xogDTSuKdRlWooy58i";

// A port nobody listens on right now (bind to 0, read it back, release it). The gateway binds
// it a moment later; another process taking it in between is possible but not on a test box.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  if (port == 0) throw std::runtime_error("no free loopback port");
  return port;
}

// Two accounts sharing the top-level credentials: "default" answers the published VerifyURL
// vector (receiveId = corp id), "bot" the intelligent-bot message vector (receiveId "").
json two_account_config() {
  return {{"gateway", {{"bind", "127.0.0.1"}, {"threads", 4}, {"shutdownGraceMs", 1000}}},
          {"channels",
           {{"wecom",
             {{"enabled", true},
              {"token", kToken},
              {"encodingAESKey", kAesKey},
              {"dm", {{"policy", "open"}, {"allowFrom", {"*"}}}},
              {"accounts",
               {{"default", {{"webhookPath", "/wecom"}, {"receiveId", kCorpId}}},
                {"bot", {{"webhookPath", "/wecom-bot"}, {"receiveId", ""}}}}}}}}},
          {"agent", {{"kind", "echo"}, {"echo", {{"delayMs", 50}}}}},
          {"logging", {{"level", "debug"}}}};
}

fs::path write_config(const fs::path& dir, const json& config) {
  const fs::path path = dir / "gateway.json";
  // Comments are part of the accepted format: keep one in every file the tests write.
  std::ofstream(path) << "// written by gateway_e2e_test\n" << config.dump(2) << "\n";
  return path;
}

class GatewayProcess {
 public:
  GatewayProcess(const fs::path& dir, const fs::path& config) : dir_(dir), port_(free_port()) {
    process_ = std::make_unique<Process>(
        std::vector<std::string>{CWC_GATEWAY_BIN, "run", "--config", config.string(), "--plugin", CWC_PLUGIN_PATH,
                                 "--port", std::to_string(port_), "--state-dir", (dir / "state").string()},
        dir / "gateway.out", dir / "gateway.err");
    httplib::Client client = this->client();
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline && process_->running()) {
      if (auto res = client.Get("/healthz"); res && res->status == 200 && res->body == "ok") return;
      std::this_thread::sleep_for(20ms);
    }
    throw std::runtime_error("the gateway did not answer /healthz:\n" + log());
  }

  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_connection_timeout(2, 0);
    c.set_read_timeout(5, 0);
    return c;
  }
  std::string log() const { return slurp(dir_ / "gateway.err"); }
  int port() const { return port_; }
  Process& process() { return *process_; }

 private:
  fs::path dir_;
  int port_;
  std::unique_ptr<Process> process_;  // its destructor SIGKILLs a child that is still running
};

RunResult run_gateway_cli(const fs::path& dir, std::vector<std::string> args) {
  args.insert(args.begin(), CWC_GATEWAY_BIN);
  return run_command(args, dir, 20s);
}

TEST(GatewayE2E, ServesTheWebhookAndStopsCleanlyOnSigterm) {
  TempDir dir;
  GatewayProcess gateway(dir.path(), write_config(dir.path(), two_account_config()));
  auto client = gateway.client();

  // WeCom's published VerifyURL request: the bare plaintext, with or without a trailing slash.
  for (const std::string path : {"/wecom", "/wecom/"}) {
    auto res = client.Get(path + "?" + kVerifyQuery);
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, 200) << path;
    EXPECT_EQ(res->body, kVerifyPlaintext) << path;
    EXPECT_EQ(res->get_header_value("Content-Type").rfind("text/plain", 0), 0u) << path;
  }

  // The documented errors come from the plugin, not from httplib.
  auto bare = client.Get("/wecom");
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->status, 400);
  EXPECT_NE(bare->body.find("missing query params"), std::string::npos) << bare->body;
  auto put = client.Put("/wecom", "x", "text/plain");
  ASSERT_TRUE(put);
  EXPECT_EQ(put->status, 405);
  auto tampered = client.Get(std::string("/wecom?") + std::regex_replace(kVerifyQuery, std::regex("012bc6"), "112bc6"));
  ASSERT_TRUE(tampered);
  EXPECT_EQ(tampered->status, 401);

  // Only the plugin's routes and the admin endpoints exist.
  for (const std::string path : {"/nope", "/wecomX", "/wecom-bot/extra", "/"}) {
    auto res = client.Get(path);
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, 404) << path;
  }

  // An intelligent-bot message: answered at once with an encrypted stream reply, and dispatched
  // to the echo agent (visible in the live status).
  const std::string body = json({{"encrypt", kBotEncrypt}}).dump();
  auto post = client.Post(std::string("/wecom-bot?") + kBotQuery, body, "application/json");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 200) << post->body;
  const json reply = json::parse(post->body, nullptr, false);
  ASSERT_TRUE(reply.is_object()) << post->body;
  EXPECT_TRUE(reply.contains("encrypt"));
  EXPECT_TRUE(reply.contains("msgsignature"));
  EXPECT_EQ(reply["nonce"], "8427661");

  auto status = client.Get("/status");
  ASSERT_TRUE(status);
  ASSERT_EQ(status->status, 200);
  const json live = json::parse(status->body, nullptr, false);
  ASSERT_TRUE(live.is_object()) << status->body;
  bool saw_bot = false;
  for (const auto& account : live["accounts"]) {
    if (account["accountId"] != "bot") continue;
    saw_bot = true;
    EXPECT_FALSE(account["lastInboundAt"].is_null());
    EXPECT_EQ(account["counters"]["messages"], 1);
  }
  EXPECT_TRUE(saw_bot) << status->body;
  // Through a reverse proxy on this machine the peer is 127.0.0.1 too; the proxy's headers keep
  // /status private all the same.
  for (const char* header : {"X-Forwarded-For", "Forwarded", "x-real-ip", "CF-Connecting-IP"}) {
    auto proxied = client.Get("/status", {{header, "203.0.113.7"}});
    ASSERT_TRUE(proxied);
    EXPECT_EQ(proxied->status, 404) << header;
    EXPECT_EQ(proxied->body.find("accounts"), std::string::npos) << header;
  }

  // SIGTERM: a clean exit 0 within the grace period plus a little.
  gateway.process().signal(SIGTERM);
  EXPECT_EQ(gateway.process().wait(10s), 0) << gateway.log();
  const std::string log = gateway.log();
  EXPECT_NE(log.find("listening on http://127.0.0.1:" + std::to_string(gateway.port())), std::string::npos) << log;
  EXPECT_NE(log.find("route /wecom-bot"), std::string::npos) << log;
  EXPECT_NE(log.find("stopped"), std::string::npos) << log;
  // Secrets never reach the log, even at debug level.
  EXPECT_EQ(log.find(kToken), std::string::npos);
  EXPECT_EQ(log.find(kAesKey), std::string::npos);
}

TEST(GatewayE2E, SigintAlsoStopsCleanly) {
  TempDir dir;
  GatewayProcess gateway(dir.path(), write_config(dir.path(), two_account_config()));
  gateway.process().signal(SIGINT);
  EXPECT_EQ(gateway.process().wait(10s), 0) << gateway.log();
}

TEST(GatewayE2E, StartupErrorsAreOneClearLineAndExitCode2) {
  TempDir dir;
  const fs::path good = write_config(dir.path(), two_account_config());

  // No config at all (and none in the environment).
  ::unsetenv("CLAWDBOT_WECOM_CONFIG");
  auto none = run_gateway_cli(dir.path(), {"run", "--plugin", CWC_PLUGIN_PATH});
  EXPECT_EQ(none.code, 2);
  EXPECT_NE(none.err.find("CLAWDBOT_WECOM_CONFIG"), std::string::npos) << none.err;

  // A config path that does not exist.
  const std::string missing = (dir.path() / "missing.json").string();
  auto absent = run_gateway_cli(dir.path(), {"run", "--config", missing, "--plugin", CWC_PLUGIN_PATH});
  EXPECT_EQ(absent.code, 2);
  EXPECT_NE(absent.err.find(missing), std::string::npos) << absent.err;

  // The plugin rejects channels.wecom and names the key.
  json bad = two_account_config();
  bad["channels"]["wecom"]["encodingAESKey"] = std::string(kAesKey).substr(0, 42);
  const fs::path bad_dir = dir.path() / "bad";
  fs::create_directories(bad_dir);
  auto rejected = run_gateway_cli(dir.path(), {"run", "--config", write_config(bad_dir, bad).string(), "--plugin",
                                               CWC_PLUGIN_PATH, "--port", "0"});
  EXPECT_EQ(rejected.code, 2);
  EXPECT_NE(rejected.err.find("encodingAESKey"), std::string::npos) << rejected.err;

  // Plugin files that are not loadable plugins.
  auto no_file = run_gateway_cli(dir.path(), {"run", "--config", good.string(), "--plugin",
                                              (dir.path() / "nope.so").string(), "--port", "0"});
  EXPECT_EQ(no_file.code, 2);
  EXPECT_NE(no_file.err.find("not found"), std::string::npos) << no_file.err;
  auto no_entry = run_gateway_cli(dir.path(), {"run", "--config", good.string(), "--plugin", CWC_FIXTURE_NO_ENTRY,
                                               "--port", "0"});
  EXPECT_EQ(no_entry.code, 2);
  EXPECT_NE(no_entry.err.find("clawdbot_wecom_plugin_init"), std::string::npos) << no_entry.err;
  auto abi2 = run_gateway_cli(dir.path(), {"run", "--config", good.string(), "--plugin", CWC_FIXTURE_ABI2, "--port",
                                           "0"});
  EXPECT_EQ(abi2.code, 2);
  EXPECT_NE(abi2.err.find("ABI 2.0"), std::string::npos) << abi2.err;
}

TEST(GatewayE2E, PluginsListVersionAndOfflineChannelsStatus) {
  TempDir dir;
  auto list = run_gateway_cli(dir.path(), {"plugins", "list", "--json", "--plugin", CWC_PLUGIN_PATH});
  ASSERT_EQ(list.code, 0) << list.err;
  const json plugins = json::parse(list.out, nullptr, false);
  ASSERT_TRUE(plugins.is_object()) << list.out;
  const auto& entry = plugins["plugins"][0];
  EXPECT_EQ(entry["id"], "wecom");
  EXPECT_EQ(entry["status"], "loaded");
  EXPECT_EQ(entry["abi"], "1.1");
  EXPECT_TRUE(entry["version"].is_string());
  EXPECT_NE(entry["version"], "");

  auto version = run_gateway_cli(dir.path(), {"--version", "--plugin", CWC_PLUGIN_PATH});
  EXPECT_EQ(version.code, 0);
  EXPECT_NE(version.out.find("clawdbot-wecom-gateway"), std::string::npos) << version.out;
  EXPECT_NE(version.out.find("ABI 1.1"), std::string::npos) << version.out;

  // No gateway on the configured port: the probe still runs in process and says so.
  json config = two_account_config();
  config["gateway"]["port"] = free_port();
  auto status = run_gateway_cli(dir.path(), {"channels", "status", "--probe", "--json", "--config",
                                             write_config(dir.path(), config).string(), "--plugin", CWC_PLUGIN_PATH,
                                             "--state-dir", (dir.path() / "state").string()});
  ASSERT_EQ(status.code, 0) << status.out << status.err;
  const json report = json::parse(status.out, nullptr, false);
  ASSERT_TRUE(report.is_object()) << status.out;
  EXPECT_EQ(report["gatewayRunning"], false);
  ASSERT_EQ(report["accounts"].size(), 2u);
  for (const auto& account : report["accounts"]) {
    EXPECT_EQ(account["probe"]["ok"], true) << account.dump();
    EXPECT_EQ(account["probe"]["network"]["ok"], false) << account.dump();
  }
}

TEST(GatewayE2E, ChannelsStatusProbeReachesARunningGateway) {
  TempDir dir;
  const fs::path config = write_config(dir.path(), two_account_config());
  GatewayProcess gateway(dir.path(), config);
  auto status = run_gateway_cli(dir.path(), {"channels", "status", "--probe", "--json", "--config", config.string(),
                                             "--plugin", CWC_PLUGIN_PATH, "--port", std::to_string(gateway.port())});
  ASSERT_EQ(status.code, 0) << status.out << status.err;
  const json report = json::parse(status.out, nullptr, false);
  ASSERT_TRUE(report.is_object()) << status.out;
  EXPECT_EQ(report["gatewayRunning"], true);
  for (const auto& account : report["accounts"]) {
    EXPECT_EQ(account["probe"]["network"]["ok"], true) << account.dump();
  }
  gateway.process().signal(SIGTERM);
  EXPECT_EQ(gateway.process().wait(10s), 0) << gateway.log();
}

TEST(FakeOpenAiExecutable, ServesSseCountsRequestsAndStopsOnSigterm) {
  TempDir dir;
  Process fake({CWC_FAKE_OPENAI_BIN, "--chunks", "Hel|lo", "--reasoning", "secret thoughts"}, dir.path() / "fake.out",
               dir.path() / "fake.err");
  const std::regex listening(R"(listening (\d+))");
  int port = 0;
  for (auto deadline = std::chrono::steady_clock::now() + 10s; std::chrono::steady_clock::now() < deadline;) {
    std::smatch m;
    const std::string out = fake.out();
    if (std::regex_search(out, m, listening)) {
      port = std::stoi(m[1]);
      break;
    }
    ASSERT_TRUE(fake.running()) << fake.err();
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_NE(port, 0) << fake.err();

  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(5, 0);
  auto res = client.Post("/v1/chat/completions", R"({"model":"m","stream":true,"messages":[]})", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_NE(res->body.find(R"("content":"Hel")"), std::string::npos) << res->body;
  EXPECT_NE(res->body.find(R"("content":"lo")"), std::string::npos) << res->body;
  EXPECT_NE(res->body.find("reasoning_content"), std::string::npos) << res->body;
  EXPECT_NE(res->body.find("data: [DONE]"), std::string::npos) << res->body;
  auto stats = client.Get("/stats");
  ASSERT_TRUE(stats);
  EXPECT_EQ(json::parse(stats->body)["requests"], 1);

  fake.signal(SIGTERM);
  EXPECT_EQ(fake.wait(10s), 0) << fake.err();
}

}  // namespace
}  // namespace cwc::testing
