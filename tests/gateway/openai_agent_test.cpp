// The OpenAI-compatible streaming agent against a fake chat-completions server on 127.0.0.1.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agents.h"
#include "gateway_test_util.h"

namespace cwc::gateway {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using nlohmann::json;
using gwtest::kShutdownText;
using gwtest::make_job;
using gwtest::RecordingSink;
using gwtest::ScopedEnv;
using Blocks = std::vector<std::string>;

// One chat-completions chunk as an SSE event.
std::string chunk(const json& delta) {
  json choice = json::object();
  choice["index"] = 0;
  choice["delta"] = delta;
  json event = json::object();
  event["choices"] = json::array({choice});
  return "data: " + event.dump() + "\n\n";
}
std::string content(const std::string& text) { return chunk({{"content", text}}); }
const std::string kRole = chunk({{"role", "assistant"}, {"content", ""}});
const std::string kReasoning = chunk({{"reasoning_content", "SECRET-REASONING"}});
const std::string kDone = "data: [DONE]\n\n";

// Cuts `text` into pieces of `size` bytes (lines and CRLFs get split across network writes).
std::vector<std::string> pieces_of(const std::string& text, std::size_t size) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < text.size(); i += size) out.push_back(text.substr(i, size));
  return out;
}

// A port nothing listens on (bound once, then closed).
int closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// A fake /v1/chat/completions endpoint. Each test sets what it answers; every request is recorded.
class FakeModel {
 public:
  struct Seen {
    std::string path;
    std::string authorization;
    std::string accept;
    std::string content_type;
    json body;
  };
  using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;

  FakeModel() {
    // One connection at a time is plenty for these tests, and it keeps ThreadSanitizer quiet
    // about libcpp-httplib (not instrumented): its function-local statics, first initialised on
    // one pool thread and read on another, look like races to TSan.
    server_.new_task_queue = [] { return new httplib::ThreadPool(1); };
    server_.set_tcp_nodelay(true);
    server_.Post(".*", [this](const httplib::Request& req, httplib::Response& res) {
      Handler handler;
      {
        std::lock_guard lock(mutex_);
        seen_.push_back({req.path, req.get_header_value("Authorization"), req.get_header_value("Accept"),
                         req.get_header_value("Content-Type"), json::parse(req.body, nullptr, false)});
        handler = handler_;
      }
      if (req.path != "/v1/chat/completions") {
        res.status = 404;
        return;
      }
      handler(req, res);
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // stop() is a no-op until the accept loop runs, so wait for it (bounded).
    for (int i = 0; i < 400 && !server_.is_running(); ++i) std::this_thread::sleep_for(5ms);
  }
  ~FakeModel() {
    release();
    server_.stop();
    thread_.join();
  }
  FakeModel(const FakeModel&) = delete;
  FakeModel& operator=(const FakeModel&) = delete;

  int port() const { return port_; }
  OpenAiSettings settings() const {
    OpenAiSettings s;
    s.base_url = "http://127.0.0.1:" + std::to_string(port_) + "/v1";
    s.api_key = "sk-unit";
    s.model = "fake-model";
    s.timeout_seconds = 2;
    return s;
  }
  std::vector<Seen> seen() {
    std::lock_guard lock(mutex_);
    return seen_;
  }

  void answer(Handler handler) {
    std::lock_guard lock(mutex_);
    handler_ = std::move(handler);
  }
  // Streams `pieces` as separate chunked writes (a short pause between them so they arrive as
  // separate reads), then ends the response. With `stall`, the response is held open after the
  // pieces until release() or 3 s, whichever comes first.
  void stream(std::vector<std::string> pieces, bool stall = false) {
    answer([this, pieces = std::move(pieces), stall](const httplib::Request&, httplib::Response& res) {
      res.set_chunked_content_provider("text/event-stream", [this, pieces, stall](std::size_t, httplib::DataSink& sink) {
        for (const auto& piece : pieces) {
          if (!sink.write(piece.data(), piece.size())) return false;
          std::this_thread::sleep_for(1ms);
        }
        if (stall) {
          std::unique_lock lock(mutex_);
          release_cv_.wait_for(lock, 3s, [this] { return released_; });
          return false;  // drop the connection
        }
        sink.done();
        return true;
      });
    });
  }
  void fail_with(int status, std::string body, std::string type = "application/json") {
    answer([status, body = std::move(body), type = std::move(type)](const httplib::Request&, httplib::Response& res) {
      res.status = status;
      res.set_content(body, type);
    });
  }
  void release() {
    std::lock_guard lock(mutex_);
    released_ = true;
    release_cv_.notify_all();
  }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = -1;
  std::mutex mutex_;
  std::condition_variable release_cv_;
  bool released_ = false;
  Handler handler_ = [](const httplib::Request&, httplib::Response& res) { res.status = 500; };
  std::vector<Seen> seen_;
};

class OpenAiAgentTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_GT(model_.port(), 0); }
  FakeModel model_;
};

TEST_F(OpenAiAgentTest, StreamsDeltasInOrderThenDone) {
  const std::string body = ": keep-alive\n\n" + kRole + kReasoning + content("Hel") + content("lo") + content(", ") +
                           content("wor\xe4\xbd\xa0ld") + "data: {\"choices\":[],\"usage\":{\"total_tokens\":9}}\r\n\r\n" +
                           kDone;
  model_.stream(pieces_of(body, 7));  // every line is cut across reads
  OpenAiAgent agent(model_.settings());
  RecordingSink sink;
  agent.run(make_job("alice", "hi"), sink);

  EXPECT_EQ(sink.blocks(), (Blocks{"Hel", "lo", ", ", "wor\xe4\xbd\xa0ld"}));
  EXPECT_EQ(sink.outcome(), "done");
  EXPECT_EQ(sink.finish_calls(), 1);

  const auto seen = model_.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].path, "/v1/chat/completions");
  EXPECT_EQ(seen[0].authorization, "Bearer sk-unit");
  EXPECT_EQ(seen[0].accept, "text/event-stream");
  EXPECT_EQ(seen[0].content_type, "application/json");
  EXPECT_EQ(seen[0].body["model"], "fake-model");
  EXPECT_EQ(seen[0].body["stream"], true);
  EXPECT_EQ(seen[0].body["messages"], json::parse(R"([{"role":"user","content":"hi"}])"));
}

TEST_F(OpenAiAgentTest, ReasoningContentNeverReachesTheSink) {
  std::string body = kRole;
  for (int i = 0; i < 5; ++i) body += kReasoning;
  body += chunk({{"reasoning_content", "more SECRET-REASONING"}, {"content", "Answer"}}) + kDone;
  model_.stream(pieces_of(body, 64));
  OpenAiAgent agent(model_.settings());
  RecordingSink sink;
  agent.run(make_job("alice", "think"), sink);
  EXPECT_EQ(sink.blocks(), Blocks{"Answer"});
  EXPECT_EQ(sink.joined().find("SECRET"), std::string::npos);
  EXPECT_EQ(sink.outcome(), "done");
}

TEST_F(OpenAiAgentTest, HistoryIsSentOnTheNextCallOfTheSameSession) {
  auto settings = model_.settings();
  settings.system_prompt = "be brief";
  OpenAiAgent agent(settings);

  model_.stream({content("Hello"), content(" Alice"), kDone});
  RecordingSink first;
  agent.run(make_job("alice", "hi"), first);
  ASSERT_EQ(first.outcome(), "done");

  model_.stream({content("Again?"), kDone});
  RecordingSink second;
  agent.run(make_job("alice", "again"), second);
  ASSERT_EQ(second.outcome(), "done");

  RecordingSink other;  // another session starts from scratch
  agent.run(make_job("bob", "who am I"), other);

  const auto seen = model_.seen();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].body["messages"], json::parse(R"([{"role":"system","content":"be brief"},
                                                      {"role":"user","content":"hi"}])"));
  EXPECT_EQ(seen[1].body["messages"], json::parse(R"([{"role":"system","content":"be brief"},
                                                      {"role":"user","content":"hi"},
                                                      {"role":"assistant","content":"Hello Alice"},
                                                      {"role":"user","content":"again"}])"));
  EXPECT_EQ(seen[2].body["messages"], json::parse(R"([{"role":"system","content":"be brief"},
                                                      {"role":"user","content":"who am I"}])"));
}

TEST_F(OpenAiAgentTest, HistoryIsTrimmedToMaxHistory) {
  auto settings = model_.settings();
  settings.max_history = 2;
  OpenAiAgent agent(settings);
  for (int i = 1; i <= 3; ++i) {
    model_.stream({content("answer " + std::to_string(i)), kDone});
    RecordingSink sink;
    agent.run(make_job("alice", "question " + std::to_string(i)), sink);
    ASSERT_EQ(sink.outcome(), "done");
  }
  const auto seen = model_.seen();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[2].body["messages"], json::parse(R"([{"role":"user","content":"question 2"},
                                                      {"role":"assistant","content":"answer 2"},
                                                      {"role":"user","content":"question 3"}])"));
}

TEST_F(OpenAiAgentTest, FailedAnswersAreNotRemembered) {
  OpenAiAgent agent(model_.settings());
  model_.fail_with(500, "oops", "text/plain");
  RecordingSink failed;
  agent.run(make_job("alice", "first"), failed);
  ASSERT_EQ(failed.outcome(), "fail: The model endpoint failed: HTTP 500");
  model_.stream({content("ok"), kDone});
  RecordingSink ok;
  agent.run(make_job("alice", "second"), ok);
  const auto seen = model_.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].body["messages"], json::parse(R"([{"role":"user","content":"second"}])"));
}

TEST_F(OpenAiAgentTest, QuotedAndMediaOnlyMessages) {
  OpenAiAgent agent(model_.settings());
  model_.stream({content("ok"), kDone});
  auto quoted = make_job("alice", "what about this");
  quoted.quote_text = "the earlier message";
  RecordingSink a;
  agent.run(quoted, a);
  auto image = make_job("bob", "");
  image.msgtype = "image";
  RecordingSink b;
  agent.run(image, b);
  const auto seen = model_.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].body["messages"].back()["content"], "> the earlier message\n\nwhat about this");
  EXPECT_EQ(seen[1].body["messages"].back()["content"], "[image]");
}

TEST_F(OpenAiAgentTest, Http401WithAnOpenAiErrorBody) {
  model_.fail_with(401, R"({"error":{"message":"Incorrect API key provided: sk-unit.","type":"invalid_request_error",
                            "param":null,"code":"invalid_api_key"}})");
  OpenAiAgent agent(model_.settings());
  RecordingSink sink;
  agent.run(make_job("alice", "hi"), sink);
  EXPECT_EQ(sink.outcome(), "fail: The model endpoint failed: HTTP 401: Incorrect API key provided: sk-unit.");
  EXPECT_TRUE(sink.blocks().empty());
  EXPECT_EQ(sink.finish_calls(), 1);
}

TEST_F(OpenAiAgentTest, HttpErrorWithoutJsonBody) {
  model_.fail_with(503, "<html>Service Unavailable</html>", "text/html");
  OpenAiAgent agent(model_.settings());
  RecordingSink sink;
  agent.run(make_job("alice", "hi"), sink);
  EXPECT_EQ(sink.outcome(), "fail: The model endpoint failed: HTTP 503");
}

TEST_F(OpenAiAgentTest, ConnectionRefused) {
  auto settings = model_.settings();
  const int port = closed_port();
  settings.base_url = "http://127.0.0.1:" + std::to_string(port) + "/v1";
  OpenAiAgent agent(settings);
  RecordingSink sink;
  const auto begin = Clock::now();
  agent.run(make_job("alice", "hi"), sink);
  EXPECT_LT(Clock::now() - begin, 2s);
  const std::string expected = "fail: The model endpoint failed: cannot reach http://127.0.0.1:" + std::to_string(port) + " (";
  EXPECT_EQ(sink.outcome().rfind(expected, 0), 0u) << sink.outcome();
  EXPECT_TRUE(sink.blocks().empty());
}

TEST_F(OpenAiAgentTest, AStreamWithoutDoneButWithContentSucceeds) {
  model_.stream({kRole, content("Hel"), content("lo")});
  OpenAiAgent agent(model_.settings());
  RecordingSink sink;
  agent.run(make_job("alice", "hi"), sink);
  EXPECT_EQ(sink.blocks(), (Blocks{"Hel", "lo"}));
  EXPECT_EQ(sink.outcome(), "done");
}

TEST_F(OpenAiAgentTest, AStreamWithoutDoneOrContentFails) {
  model_.stream({kRole, kReasoning});
  OpenAiAgent agent(model_.settings());
  RecordingSink sink;
  agent.run(make_job("alice", "hi"), sink);
  EXPECT_EQ(sink.outcome(), "fail: The model endpoint failed: the model returned no answer");
}

TEST_F(OpenAiAgentTest, AnErrorEventMidStreamFails) {
  model_.stream({content("Hel"), "data: {\"error\":{\"message\":\"The server is overloaded\"}}\n\n", content("never"), kDone});
  OpenAiAgent agent(model_.settings());
  RecordingSink sink;
  agent.run(make_job("alice", "hi"), sink);
  EXPECT_EQ(sink.blocks(), Blocks{"Hel"});
  EXPECT_EQ(sink.outcome(), "fail: The model endpoint failed: The server is overloaded");
}

TEST_F(OpenAiAgentTest, AMalformedChunkFails) {
  model_.stream({content("Hel"), "data: {\"choices\":[{\"delta\":\n\n", kDone});
  OpenAiAgent agent(model_.settings());
  RecordingSink sink;
  agent.run(make_job("alice", "hi"), sink);
  EXPECT_EQ(sink.blocks(), Blocks{"Hel"});
  EXPECT_EQ(sink.outcome(), "fail: The model endpoint failed: malformed SSE payload from the model endpoint");
}

TEST_F(OpenAiAgentTest, EmptyDataKeepAlivesAreHarmless) {
  model_.stream({"data:\n\n", content("Hel"), "data: \r\n\r\n", content("lo"), kDone});
  OpenAiAgent agent(model_.settings());
  RecordingSink sink;
  agent.run(make_job("alice", "hi"), sink);
  EXPECT_EQ(sink.blocks(), (Blocks{"Hel", "lo"}));
  EXPECT_EQ(sink.outcome(), "done");
}

TEST_F(OpenAiAgentTest, BaseUrlTrailingSlashAndApiKeyFromTheEnvironment) {
  model_.stream({content("ok"), kDone});
  ScopedEnv key("CWC_GWTEST_OPENAI_KEY", "sk-from-env");
  auto settings = model_.settings();
  settings.base_url += "//";
  settings.api_key = "";
  settings.api_key_env = "CWC_GWTEST_OPENAI_KEY";
  OpenAiAgent from_env(settings);
  RecordingSink a;
  from_env.run(make_job("alice", "hi"), a);
  EXPECT_EQ(a.outcome(), "done");

  ScopedEnv no_key("CWC_GWTEST_OPENAI_KEY", std::nullopt);
  OpenAiAgent keyless(settings);
  RecordingSink b;
  keyless.run(make_job("alice", "hi"), b);
  EXPECT_EQ(b.outcome(), "done");

  const auto seen = model_.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].path, "/v1/chat/completions");
  EXPECT_EQ(seen[0].authorization, "Bearer sk-from-env");
  EXPECT_EQ(seen[1].authorization, "");
}

TEST_F(OpenAiAgentTest, ReadTimeoutEndsAStalledStream) {
  auto settings = model_.settings();
  settings.timeout_seconds = 1;
  model_.stream({content("Hel")}, /*stall=*/true);
  OpenAiAgent agent(settings);
  RecordingSink sink;
  const auto begin = Clock::now();
  agent.run(make_job("alice", "hi"), sink);
  EXPECT_LT(Clock::now() - begin, 2500ms);
  EXPECT_EQ(sink.blocks(), Blocks{"Hel"});
  // timeoutSeconds is the total deadline for the answer (see tests/faults/agent_fault_test.cpp).
  EXPECT_EQ(sink.outcome(), "fail: " + OpenAiAgent::timeout_text(1, /*partial=*/true));
}

TEST_F(OpenAiAgentTest, CancelAbortsAStalledStreamPromptly) {
  auto settings = model_.settings();
  settings.timeout_seconds = 30;  // only cancel() can end this request in time
  model_.stream({content("Hel")}, /*stall=*/true);
  OpenAiAgent agent(settings);
  RecordingSink sink;
  std::thread runner([&] { agent.run(make_job("alice", "hi"), sink); });
  const auto deadline = Clock::now() + 2s;
  while (sink.blocks().empty() && Clock::now() < deadline) std::this_thread::sleep_for(2ms);
  ASSERT_EQ(sink.blocks(), Blocks{"Hel"});
  const auto cancelled_at = Clock::now();
  sink.cancel();   // the router's cancelled() turns true first ...
  agent.cancel();  // ... then the shutdown hook aborts the network read
  runner.join();
  EXPECT_LT(Clock::now() - cancelled_at, 1s);
  EXPECT_EQ(sink.outcome(), std::string("fail: ") + kShutdownText);
}

TEST_F(OpenAiAgentTest, RunAfterCancelFailsWithoutARequest) {
  model_.stream({content("ok"), kDone});
  OpenAiAgent agent(model_.settings());
  agent.cancel();
  RecordingSink sink;
  agent.run(make_job("alice", "hi"), sink);
  EXPECT_EQ(sink.outcome(), std::string("fail: ") + kShutdownText);
  EXPECT_TRUE(model_.seen().empty());
}

TEST_F(OpenAiAgentTest, ConcurrentSessionsDoNotMixUp) {
  model_.answer([](const httplib::Request& req, httplib::Response& res) {
    const auto body = json::parse(req.body);
    const std::string text = body["messages"].back()["content"];
    res.set_content(content("re: ") + content(text) + kDone, "text/event-stream");
  });
  OpenAiAgent agent(model_.settings());
  // A first run on this thread initialises httplib's function-local statics before the threads
  // start (see FakeModel: TSan cannot see the library's own synchronisation).
  RecordingSink warm_up;
  agent.run(make_job("warm-up", "w"), warm_up);
  ASSERT_EQ(warm_up.outcome(), "done");
  constexpr int kThreads = 4;
  std::array<RecordingSink, kThreads> sinks;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] { agent.run(make_job("user" + std::to_string(t), "msg" + std::to_string(t)), sinks[t]); });
  }
  for (auto& t : threads) t.join();
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(sinks[t].joined(), "re: msg" + std::to_string(t));
    EXPECT_EQ(sinks[t].outcome(), "done");
  }
}

}  // namespace
}  // namespace cwc::gateway
