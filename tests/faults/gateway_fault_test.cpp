// Fault tests of the reference gateway, seen from the WeCom user's side: the real
// clawdbot-wecom-gateway binary (child process, loopback, free port) answers with its OpenAI agent
// in front of the fake endpoint (tests/support/fake_openai_server.*, in this process), and the
// test plays WeCom: a signed message, then signed `msgtype=stream` refreshes every 50 ms, each
// reply verified and decrypted, until the stream says finish.
//
// Every case must end with a finished stream whose text is readable (the answer, or what went
// wrong) within the agent's configured timeout, and with the gateway exiting 0 on SIGTERM in
// bounded time (a hung agent thread would keep the router from joining). The ASan and TSan builds
// run the same cases against a sanitized gateway binary.
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "integration/process.h"
#include "support/temp_dir.h"
#include "support/fake_openai_server.h"
#include "support/wecom_requests.h"

namespace cwc::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kTimeoutSeconds = 2;  // agent.openai.timeoutSeconds in these tests
// How much later than the deadline the user may see the result: one refresh interval, the
// watchdog's stop() period and scheduling on a loaded 2-core box (sanitizer builds included).
constexpr auto kSlack = 1500ms;
constexpr const char* kShutdownText = "The gateway is shutting down; please send your message again.";
const std::string kWarning = "\xe2\x9a\xa0\xef\xb8\x8f ";  // "⚠️ "

json openai_config(const std::string& base_url, int timeout_seconds = kTimeoutSeconds) {
  return {{"gateway", {{"port", 0}, {"bind", "127.0.0.1"}, {"threads", 8}, {"shutdownGraceMs", 500}}},
          {"channels",
           {{"wecom",
             {{"enabled", true},
              {"webhookPath", "/wecom"},
              {"token", kToken},
              {"encodingAESKey", kAesKey},
              {"receiveId", ""},
              {"dm", {{"policy", "open"}, {"allowFrom", {"*"}}}}}}}},
          {"agent",
           {{"kind", "openai"},
            {"concurrency", 2},
            {"openai", {{"baseUrl", base_url}, {"apiKey", "sk-fault"}, {"model", "fake-1"},
                        {"timeoutSeconds", timeout_seconds}}}}}};
}

// What the user's WeCom client shows for one stream.
struct Seen {
  bool finished = false;
  std::string content;
  Clock::duration after{};  // from the message to the finished reply
};

class Gateway {
 public:
  Gateway(const fs::path& dir, const json& config) : dir_(dir) {
    const fs::path config_path = dir / "gateway.json";
    std::ofstream(config_path) << "// written by gateway_fault_test\n" << config.dump(2);
    process_ = std::make_unique<Process>(
        std::vector<std::string>{CWC_GATEWAY_BIN, "run", "--config", config_path.string(), "--plugin", CWC_PLUGIN_PATH,
                                 "--state-dir", (dir / "state").string(), "--log-level", "debug"},
        dir / "gateway.out", dir / "gateway.log");
    const std::regex listening(R"(listening on http://127\.0\.0\.1:(\d+))");
    for (auto deadline = Clock::now() + 20s; Clock::now() < deadline && process_->running();) {
      std::smatch m;
      const std::string text = log();
      if (std::regex_search(text, m, listening)) {
        port_ = std::stoi(m[1]);
        break;
      }
      std::this_thread::sleep_for(20ms);
    }
    if (port_ == 0) throw std::runtime_error("the gateway did not start:\n" + log());
  }
  ~Gateway() {
    if (process_->running()) stop(10s);
  }
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // SIGTERM; the exit code (-1 if it did not exit within `timeout`).
  int stop(std::chrono::milliseconds timeout) {
    process_->signal(SIGTERM);
    return process_->wait(timeout);
  }
  std::string log() const { return slurp(dir_ / "gateway.log"); }
  Process& process() { return *process_; }

  // One signed callback; the decrypted reply plaintext as JSON (null on any failure).
  json post(const std::string& plaintext) {
    const auto request = peer_.callback(plaintext);
    httplib::Client client("127.0.0.1", port_);
    client.set_connection_timeout(2, 0);
    client.set_read_timeout(5, 0);
    auto res = client.Post("/wecom?" + request.query, request.body, "application/json");
    if (!res) return nullptr;
    last_status_ = res->status;
    if (res->status != 200 || res->body.empty()) return nullptr;
    std::string error;
    const std::string plain = peer_.open_reply(res->body, "8427661", &error);
    if (plain.empty()) return nullptr;
    return json::parse(plain, nullptr, false);
  }

  // A text message from `user`; the first reply (null if there was none).
  json send_message(const std::string& user, const std::string& msgid, const std::string& text) {
    const json message = {{"msgid", msgid},      {"aibotid", "BOT"},         {"chattype", "single"},
                          {"from", {{"userid", user}}}, {"msgtype", "text"}, {"text", {{"content", text}}}};
    return post(message.dump());
  }
  // The same, reduced to the stream id of the first reply ("" if there was none).
  std::string send_text(const std::string& user, const std::string& msgid, const std::string& text) {
    const json reply = send_message(user, msgid, text);
    if (!reply.is_object() || !reply.contains("stream")) return {};
    return reply["stream"].value("id", std::string());
  }

  // What one refresh of `stream_id` shows.
  Seen refresh(const std::string& user, const std::string& stream_id) {
    const json message = {{"msgid", "refresh-" + std::to_string(++refreshes_)},
                          {"aibotid", "BOT"},
                          {"chattype", "single"},
                          {"from", {{"userid", user}}},
                          {"msgtype", "stream"},
                          {"stream", {{"id", stream_id}}}};
    const json reply = post(message.dump());
    Seen seen;
    if (reply.is_object() && reply.contains("stream")) {
      seen.finished = reply["stream"].value("finish", false);
      seen.content = reply["stream"].value("content", std::string());
    }
    return seen;
  }

  // Refreshes every 50 ms, as WeCom does, until the stream finishes or `limit` passes.
  Seen follow(const std::string& user, const std::string& stream_id, Clock::time_point since,
              Clock::duration limit) {
    Seen seen;
    while (Clock::now() - since < limit) {
      seen = refresh(user, stream_id);
      if (seen.finished) break;
      std::this_thread::sleep_for(50ms);
    }
    seen.after = Clock::now() - since;
    return seen;
  }

  int last_status() const { return last_status_.load(); }

 private:
  fs::path dir_;
  std::unique_ptr<Process> process_;
  int port_ = 0;
  WecomPeer peer_;
  std::atomic<int> refreshes_{0};
  std::atomic<int> last_status_{0};
};

std::string ms(Clock::duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}

class GatewayFault : public ::testing::Test {
 protected:
  // One message through the gateway in front of a model configured with `options`; what the
  // user sees, followed for at most the timeout plus slack.
  Seen ask(const FakeOpenAiOptions& options, const std::string& text = "hi") {
    model_.set_options(options);
    gateway_ = std::make_unique<Gateway>(dir_.path(), openai_config(model_.base_url()));
    const auto sent = Clock::now();
    const std::string stream_id = gateway_->send_text("zhangsan", "msg-1", text);
    EXPECT_FALSE(stream_id.empty()) << "HTTP " << gateway_->last_status() << "\n" << gateway_->log();
    if (stream_id.empty()) return {};
    return gateway_->follow("zhangsan", stream_id, sent, std::chrono::seconds(kTimeoutSeconds) + kSlack);
  }

  // Every case ends the same way: SIGTERM, exit 0, promptly (no agent thread left hanging).
  void TearDown() override {
    if (!gateway_) return;
    const auto stopping = Clock::now();
    EXPECT_EQ(gateway_->stop(10s), 0) << gateway_->log();
    EXPECT_LT(Clock::now() - stopping, 5s) << gateway_->log();
    const std::string log = gateway_->log();
    EXPECT_NE(log.find("stopped"), std::string::npos) << log;
    EXPECT_EQ(log.find("sk-fault"), std::string::npos);  // the API key never reaches the log
  }

  TempDir dir_;
  FakeOpenAiServer model_;
  std::unique_ptr<Gateway> gateway_;
};

TEST_F(GatewayFault, HealthyModelAnswersWithinTheDeadline) {
  FakeOpenAiOptions options;
  options.delay_ms = 100;
  const Seen seen = ask(options);
  EXPECT_TRUE(seen.finished) << seen.content;
  EXPECT_EQ(seen.content, "Hello from the fake model.");
  EXPECT_LT(seen.after, std::chrono::seconds(kTimeoutSeconds));
}

// Tokens keep coming (every 600 ms: never a read timeout), but the whole answer would take 3.6 s:
// the total deadline cuts it at 2 s, keeps what was streamed and says why.
TEST_F(GatewayFault, SlowModelIsCutAtTheTotalDeadline) {
  FakeOpenAiOptions options;
  options.delay_ms = 600;
  options.chunks = {"one", " two", " three", " four", " five", " six"};
  const Seen seen = ask(options);
  ASSERT_TRUE(seen.finished) << "still open after " << ms(seen.after) << ": " << seen.content;
  EXPECT_LT(seen.after, std::chrono::seconds(kTimeoutSeconds) + kSlack);
  EXPECT_EQ(seen.content.rfind("one", 0), 0u) << seen.content;  // the part that arrived stays
  const std::string tail = kWarning + "The model did not finish its answer in 2 s; please try again.";
  ASSERT_GE(seen.content.size(), tail.size());
  EXPECT_EQ(seen.content.substr(seen.content.size() - tail.size()), tail) << seen.content;
  EXPECT_EQ(seen.content.find("six"), std::string::npos) << seen.content;
  EXPECT_NE(gateway_->log().find("openai agent: no complete answer within 2 s"), std::string::npos);
}

// Headers, then silence forever: the user hears back at the deadline, not never.
TEST_F(GatewayFault, HungModelEndsAtTheDeadline) {
  FakeOpenAiOptions options;
  options.hang = true;
  const Seen seen = ask(options);
  ASSERT_TRUE(seen.finished) << "still open after " << ms(seen.after) << ": " << seen.content;
  EXPECT_EQ(seen.content, kWarning + "The model did not answer in 2 s; please try again.");
  EXPECT_GE(seen.after, std::chrono::seconds(kTimeoutSeconds) - 100ms);
  EXPECT_LT(seen.after, std::chrono::seconds(kTimeoutSeconds) + kSlack);
}

TEST_F(GatewayFault, Http500IsReadable) {
  FakeOpenAiOptions options;
  options.status = 500;
  const Seen seen = ask(options);
  ASSERT_TRUE(seen.finished) << seen.content;
  EXPECT_EQ(seen.content, "The model endpoint failed: HTTP 500: fake failure 500");
  EXPECT_LT(seen.after, std::chrono::seconds(kTimeoutSeconds));
  EXPECT_NE(gateway_->log().find("openai agent: HTTP 500"), std::string::npos);
}

// OpenAI reports a failure after streaming has begun as an SSE event {"error": {...}}.
TEST_F(GatewayFault, SseErrorEventKeepsThePartialAnswerAndSaysWhy) {
  FakeOpenAiOptions options;
  options.error_event = "The server had an error while processing your request.";
  const Seen seen = ask(options);
  ASSERT_TRUE(seen.finished) << seen.content;
  EXPECT_EQ(seen.content, "Hello\n\nThe model endpoint failed: The server had an error while processing your request.");
  EXPECT_LT(seen.after, std::chrono::seconds(kTimeoutSeconds));
}

// Some compatible servers put "error": null into every chunk; that is a normal answer.
TEST_F(GatewayFault, NullErrorFieldIsNotAnError) {
  FakeOpenAiOptions options;
  options.null_error_field = true;
  const Seen seen = ask(options);
  ASSERT_TRUE(seen.finished) << seen.content;
  EXPECT_EQ(seen.content, "Hello from the fake model.");
}

TEST_F(GatewayFault, ConnectionClosedMidStreamIsReadable) {
  FakeOpenAiOptions options;
  options.close_mid_stream = true;
  const Seen seen = ask(options);
  ASSERT_TRUE(seen.finished) << seen.content;
  EXPECT_EQ(seen.content.rfind("Hello\n\nThe model endpoint failed: the stream broke off (", 0), 0u) << seen.content;
  EXPECT_LT(seen.after, std::chrono::seconds(kTimeoutSeconds));
}

// SIGTERM with two answers running (the model hangs; agent.concurrency 2) and a third message
// queued behind them: after the 500 ms grace, all three users see the shutdown text while the
// gateway still answers refreshes; a message sent during the grace period is told to retry; the
// process exits 0 long before the model's 30 s timeout.
TEST_F(GatewayFault, SigtermWithStreamsOpenFinishesEveryStream) {
  FakeOpenAiOptions options;
  options.hang = true;
  model_.set_options(options);
  gateway_ = std::make_unique<Gateway>(dir_.path(), openai_config(model_.base_url(), /*timeout_seconds=*/30));
  const std::vector<std::string> users = {"u1", "u2", "u3"};
  std::map<std::string, std::string> streams;
  for (const auto& user : users) {
    streams[user] = gateway_->send_text(user, "msg-" + user, "hello from " + user);
    ASSERT_FALSE(streams[user].empty()) << gateway_->log();
  }
  for (auto deadline = Clock::now() + 5s; model_.requests() < 2 && Clock::now() < deadline;) {
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_EQ(model_.requests(), 2);  // two running, one queued

  // WeCom keeps refreshing every stream while the gateway shuts down.
  std::map<std::string, Seen> last;
  std::atomic<bool> stop_refreshing{false};
  std::vector<std::thread> refreshers;
  std::mutex last_mutex;
  for (const auto& user : users) {
    refreshers.emplace_back([&, user] {
      while (!stop_refreshing) {
        Seen seen = gateway_->refresh(user, streams[user]);
        if (seen.finished) {
          std::lock_guard lock(last_mutex);
          last[user] = seen;
          return;
        }
        std::this_thread::sleep_for(30ms);
      }
    });
  }
  const auto signalled = Clock::now();
  gateway_->process().signal(SIGTERM);
  std::this_thread::sleep_for(100ms);
  const json late = gateway_->send_message("u4", "msg-u4", "too late");
  const int exit_code = gateway_->process().wait(10s);
  const auto exited = Clock::now() - signalled;
  stop_refreshing = true;
  for (auto& t : refreshers) t.join();

  EXPECT_EQ(exit_code, 0) << gateway_->log();
  EXPECT_LT(exited, 5s) << gateway_->log();
  for (const auto& user : users) {
    ASSERT_TRUE(last.count(user)) << user << " never saw the stream finish\n" << gateway_->log();
    EXPECT_EQ(last[user].content, kShutdownText) << user;
  }
  // Sent during the grace period: not run, and the user is told at once to try again.
  ASSERT_TRUE(late.is_object()) << gateway_->log();
  EXPECT_EQ(late["stream"]["finish"], true) << late.dump();
  EXPECT_NE(late["stream"]["content"].get<std::string>().find("try again"), std::string::npos) << late.dump();
  EXPECT_EQ(model_.requests(), 2);
  gateway_.reset();  // already stopped; TearDown has nothing to check
}

}  // namespace
}  // namespace cwc::testing
