// Unit tests of the reference gateway's parts: config file, SSE parsing, the session router,
// the file store, the plugin loader, and the agents (the OpenAI one against a loopback fake).
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "agents.h"
#include "file_store.h"
#include "gateway_config.h"
#include "plugin.h"
#include "router.h"

namespace cwc::gateway {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;

constexpr const char* kMinimal = R"({"channels":{"wecom":{"token":"T","encodingAESKey":"K"}}})";

fs::path temp_dir() {
  char pattern[] = "/tmp/cwc-gw-XXXXXX";
  return fs::path(mkdtemp(pattern));
}

// ---------------------------------------------------------------------------------------------
TEST(GatewayConfig, DefaultsAndComments) {
  auto c = parse_gateway_config(std::string("// leading comment\n") + kMinimal);
  EXPECT_EQ(c.port, 18789);
  EXPECT_EQ(c.bind, "127.0.0.1");
  EXPECT_EQ(c.threads, 64);
  EXPECT_EQ(c.agent_kind, "echo");
  EXPECT_EQ(c.echo.delay_ms, 300);
  EXPECT_EQ(c.wecom["token"], "T");
  EXPECT_NE(c.state_dir.find(".clawdbot-wecom"), std::string::npos);
}

TEST(GatewayConfig, ReadsEverySection) {
  auto c = parse_gateway_config(R"({
    "gateway": {"port": 9000, "bind": "0.0.0.0", "threads": 8, "shutdownGraceMs": 10, "stateDir": "/x"},
    /* block comment */
    "channels": {"wecom": {"token": "T"}},
    "agent": {"kind": "openai", "concurrency": 3,
              "openai": {"baseUrl": "http://h/v1/", "model": "m", "systemPrompt": "s", "timeoutSeconds": 5, "maxHistory": 4}},
    "logging": {"level": "debug", "file": "/tmp/x.log"}})");
  EXPECT_EQ(c.port, 9000);
  EXPECT_EQ(c.bind, "0.0.0.0");
  EXPECT_EQ(c.threads, 8);
  EXPECT_EQ(c.shutdown_grace_ms, 10);
  EXPECT_EQ(c.state_dir, "/x");
  EXPECT_EQ(c.agent_kind, "openai");
  EXPECT_EQ(c.agent_concurrency, 3);
  EXPECT_EQ(c.openai.base_url, "http://h/v1/");
  EXPECT_EQ(c.openai.max_history, 4);
  EXPECT_EQ(c.log_level, "debug");
}

TEST(GatewayConfig, PreciseErrors) {
  auto error_of = [](const std::string& text) {
    try {
      parse_gateway_config(text);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error_of("{").find("not valid JSON"), std::string::npos);
  EXPECT_NE(error_of("[]").find("must hold a JSON object"), std::string::npos);
  EXPECT_NE(error_of("{}").find("channels.wecom is missing"), std::string::npos);
  EXPECT_EQ(error_of(R"({"channels":{"wecom":{}},"gateway":{"port":70000}})"),
            "gateway.port must be between 0 and 65535");
  EXPECT_EQ(error_of(R"({"channels":{"wecom":{}},"gateway":{"bind":5}})"), "gateway.bind has the wrong type");
  EXPECT_EQ(error_of(R"({"channels":{"wecom":{}},"agent":{"kind":"gpt"}})"),
            "agent.kind must be \"echo\" or \"openai\" (got \"gpt\")");
  EXPECT_NE(error_of(R"({"channels":{"wecom":{}},"agent":{"kind":"openai"}})").find("agent.openai.baseUrl is required"),
            std::string::npos);
  EXPECT_THROW(load_gateway_config("/nonexistent/gateway.json"), ConfigError);
}

// ---------------------------------------------------------------------------------------------
TEST(SseParser, EventsSurviveEverySplitPoint) {
  const std::string stream =
      ": keep-alive\r\n"
      "data: {\"a\":1}\r\n\r\n"
      "event: message\n"
      "data: line one\n"
      "data: line two\n\n"
      "data:[DONE]\n\n";
  const std::vector<std::string> expected = {"{\"a\":1}", "line one\nline two", "[DONE]"};
  for (std::size_t split = 0; split <= stream.size(); ++split) {
    SseParser parser;
    auto events = parser.feed(std::string_view(stream).substr(0, split));
    auto rest = parser.feed(std::string_view(stream).substr(split));
    events.insert(events.end(), rest.begin(), rest.end());
    EXPECT_EQ(events, expected) << "split at " << split;
  }
  SseParser bytewise;
  std::vector<std::string> events;
  for (char c : stream) {
    auto got = bytewise.feed(std::string_view(&c, 1));
    events.insert(events.end(), got.begin(), got.end());
  }
  EXPECT_EQ(events, expected);
}

TEST(SseParser, ExtractsOnlyAnswerContent) {
  std::string error;
  EXPECT_EQ(extract_delta_content(R"({"choices":[{"delta":{"content":"Hi"}}]})", &error), "Hi");
  EXPECT_EQ(extract_delta_content(R"({"choices":[{"delta":{"role":"assistant"}}]})", &error), "");
  EXPECT_EQ(extract_delta_content(R"({"choices":[{"delta":{"reasoning_content":"thinking..."}}]})", &error), "");
  EXPECT_EQ(extract_delta_content(R"({"choices":[]})", &error), "");
  EXPECT_TRUE(error.empty());
  EXPECT_EQ(extract_delta_content(R"({"error":{"message":"quota exceeded"}})", &error), "");
  EXPECT_EQ(error, "quota exceeded");
  error.clear();
  extract_delta_content("{not json", &error);
  EXPECT_EQ(error, "malformed SSE payload from the model endpoint");
}

// ---------------------------------------------------------------------------------------------
Job job_for(const std::string& session, int index) {
  Job job;
  job.account_id = "default";
  job.target = "wecom:" + session;
  job.stream_id = session + "-" + std::to_string(index);
  job.text = std::to_string(index);
  return job;
}

TEST(SessionRouter, KeepsPerSessionOrderAndOneJobPerSessionAtATime) {
  std::mutex mutex;
  std::map<std::string, std::vector<int>> seen;
  std::map<std::string, int> in_flight;
  std::atomic<int> overlap_violations{0};
  std::atomic<int> done{0};
  SessionRouter router(4, [&](const Job& job) {
    {
      std::lock_guard lock(mutex);
      if (++in_flight[job.target] > 1) ++overlap_violations;
    }
    std::this_thread::sleep_for(100us);
    {
      std::lock_guard lock(mutex);
      --in_flight[job.target];
      seen[job.target].push_back(std::stoi(job.text));
    }
    ++done;
  });
  constexpr int kSessions = 20;
  constexpr int kJobs = 30;
  for (int j = 0; j < kJobs; ++j) {
    for (int s = 0; s < kSessions; ++s) ASSERT_TRUE(router.enqueue(job_for("u" + std::to_string(s), j)));
  }
  for (int i = 0; i < 1000 && done < kSessions * kJobs; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_EQ(done.load(), kSessions * kJobs);
  EXPECT_EQ(overlap_violations.load(), 0);
  for (const auto& [session, order] : seen) {
    ASSERT_EQ(order.size(), static_cast<std::size_t>(kJobs));
    for (int j = 0; j < kJobs; ++j) EXPECT_EQ(order[j], j) << session;
  }
}

TEST(SessionRouter, DifferentSessionsRunInParallelAndEnqueueNeverBlocks) {
  std::atomic<int> running{0};
  std::atomic<int> max_running{0};
  std::atomic<bool> release{false};
  SessionRouter router(2, [&](const Job&) {
    const int now = ++running;
    int prev = max_running.load();
    while (now > prev && !max_running.compare_exchange_weak(prev, now)) {
    }
    while (!release) std::this_thread::sleep_for(1ms);
    --running;
  });
  const auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < 50; ++i) router.enqueue(job_for("a", i));
  router.enqueue(job_for("b", 0));
  EXPECT_LT(std::chrono::steady_clock::now() - started, 100ms);  // workers are busy; enqueue is not
  for (int i = 0; i < 200 && max_running < 2; ++i) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(max_running.load(), 2);
  release = true;
}

TEST(SessionRouter, ShutdownReturnsUnstartedJobsAndCancels) {
  std::atomic<bool> woke_early{false};
  SessionRouter* self = nullptr;
  SessionRouter router(1, [&](const Job&) {
    if (!self->wait_ms(10000)) woke_early = true;  // cancellation must cut this short
  });
  self = &router;
  router.enqueue(job_for("a", 0));
  router.enqueue(job_for("a", 1));
  router.enqueue(job_for("b", 0));
  std::this_thread::sleep_for(50ms);
  std::atomic<bool> on_cancel_called{false};
  const auto started = std::chrono::steady_clock::now();
  auto left = router.shutdown(100, [&] { on_cancel_called = true; });
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
  EXPECT_TRUE(woke_early);
  EXPECT_TRUE(on_cancel_called);
  EXPECT_TRUE(router.cancelled());
  EXPECT_EQ(left.size(), 2u);
  EXPECT_FALSE(router.enqueue(job_for("c", 0)));
}

// ---------------------------------------------------------------------------------------------
TEST(FileStore, RoundTripPersistenceAndAtomicWrites) {
  const fs::path dir = temp_dir();
  const fs::path file = dir / "state" / "wecom-store.json";
  {
    FileStore store(file);
    EXPECT_FALSE(store.get("ns", "k"));
    EXPECT_TRUE(store.put("ns", "k", "v1"));
    EXPECT_EQ(*store.get("ns", "k"), "v1");
    EXPECT_TRUE(json::parse(std::ifstream(file)).is_object());  // a complete document on disk
  }
  FileStore reopened(file);
  EXPECT_EQ(*reopened.get("ns", "k"), "v1");
  for (const auto& entry : fs::directory_iterator(file.parent_path())) {
    EXPECT_EQ(entry.path().filename(), "wecom-store.json");  // no temporary files left behind
  }
  fs::remove_all(dir);
}

TEST(FileStore, SeesWritesOfAnotherProcess) {
  const fs::path dir = temp_dir();
  const fs::path file = dir / "wecom-store.json";
  FileStore gateway(file);
  FileStore cli(file);  // e.g. `pairing approve` in another process
  EXPECT_TRUE(gateway.put("wecom:default:pairing", "requests", "[]"));
  std::this_thread::sleep_for(20ms);  // a distinct modification time
  EXPECT_TRUE(cli.put("wecom:default:allowFrom", "list", R"(["newbie"])"));
  EXPECT_EQ(*gateway.get("wecom:default:allowFrom", "list"), R"(["newbie"])");
  EXPECT_EQ(*gateway.get("wecom:default:pairing", "requests"), "[]");
  fs::remove_all(dir);
}

TEST(FileStore, CorruptFileIsNotFatal) {
  const fs::path dir = temp_dir();
  const fs::path file = dir / "wecom-store.json";
  std::ofstream(file) << "{ not json";
  FileStore store(file);
  EXPECT_FALSE(store.get("ns", "k"));
  EXPECT_TRUE(store.put("ns", "k", "v"));
  EXPECT_EQ(*store.get("ns", "k"), "v");
  fs::remove_all(dir);
}

// ---------------------------------------------------------------------------------------------
std::string load_error(const std::string& path) {
  try {
    PluginLibrary::load(path);
  } catch (const PluginError& e) {
    return e.what();
  }
  return "loaded";
}

TEST(PluginLoader, LoadsTheRealPlugin) {
  auto library = PluginLibrary::load(CWC_PLUGIN_PATH);
  EXPECT_FALSE(library->version().empty());
  EXPECT_EQ(library->abi_version(), "1.0");
}

TEST(PluginLoader, ClearErrorsForWrongFiles) {
  EXPECT_NE(load_error("/nonexistent/libclawdbot_wecom.so").find("not found at /nonexistent/libclawdbot_wecom.so"),
            std::string::npos);
  const fs::path dir = temp_dir();
  std::ofstream(dir / "fake.so") << "not an ELF file";
  EXPECT_NE(load_error((dir / "fake.so").string()).find("cannot load WeCom plugin"), std::string::npos);
  EXPECT_NE(load_error(CWC_FIXTURE_NO_ENTRY).find("is not a clawdbot-wecom plugin"), std::string::npos);
  const std::string abi2 = load_error(CWC_FIXTURE_ABI2);
  EXPECT_NE(abi2.find("implements WeCom plugin ABI 2.0 but this gateway needs ABI 1.x"), std::string::npos) << abi2;
  fs::remove_all(dir);
}

void ignore_log(void*, cwc_log_level, cwc_str, cwc_str) {}
cwc_status refuse_dispatch(void*, const cwc_inbound_message*) { return CWC_ERR_UNSUPPORTED; }

TEST(PluginLoader, InstanceConfigErrorsAndVerifyUrl) {
  auto library = PluginLibrary::load(CWC_PLUGIN_PATH);
  cwc_host_api host{};
  host.struct_size = sizeof(host);
  host.abi_version = CWC_ABI_VERSION;
  host.callback_log = ignore_log;
  host.callback_dispatch = refuse_dispatch;
  try {
    PluginInstance bad(library, host, R"({"token":"T","encodingAESKey":"abc"})");
    FAIL() << "bad config accepted";
  } catch (const PluginError& e) {
    EXPECT_STREQ(e.what(), "channels.wecom.encodingAESKey must be 43 characters (got 3)");
  }
  PluginInstance instance(library, host,
                          R"({"token":"hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo","encodingAESKey":"6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt","receiveId":"ww1436e0e65a779aee"})");
  auto answer = instance.handle(
      "GET", "/wecom",
      "msg_signature=012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb&timestamp=1476416373&nonce=47744683&echostr="
      "fsi1xnbH4yQh0%2BPJxcOdhhK6TDXkjMyhEPA7xB2TGz6b%2Bg7xyAbEkRxN%2F3cNXW9qdqjnoVzEtpbhnFyq6SVHyA%3D%3D",
      "", "", "127.0.0.1");
  EXPECT_EQ(answer.status, 200);
  EXPECT_EQ(answer.body, "1288432023552776189");
  EXPECT_EQ(json::parse(instance.routes_json())[0]["path"], "/wecom");
  EXPECT_THROW(instance.probe_json("nope"), PluginError);
  EXPECT_FALSE(instance.push("unknown-stream", "x"));
}

// ---------------------------------------------------------------------------------------------
class RecordingSink : public ReplySink {
 public:
  void push(const std::string& block) override { blocks.push_back(block); }
  void done() override { finished = "done"; }
  void fail(const std::string& text) override { finished = "fail: " + text; }
  bool cancelled() const override { return cancel; }
  bool wait_ms(int ms) override {
    if (cancel) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return true;
  }
  std::vector<std::string> blocks;
  std::string finished;
  bool cancel = false;
};

TEST(EchoAgent, AnswersInTwoBlocksFailsOnPurposeAndStopsOnCancel) {
  EchoAgent agent(EchoSettings{1});
  RecordingSink sink;
  Job job = job_for("u", 0);
  job.text = "hello";
  agent.run(job, sink);
  EXPECT_EQ(sink.blocks, (std::vector<std::string>{"echo: ", "hello"}));
  EXPECT_EQ(sink.finished, "done");

  RecordingSink failing;
  job.text = "/fail please";
  agent.run(job, failing);
  EXPECT_EQ(failing.finished, "fail: echo agent failed on purpose");

  RecordingSink cancelled;
  cancelled.cancel = true;
  job.text = "hi";
  agent.run(job, cancelled);
  EXPECT_EQ(cancelled.finished, "fail: The gateway is shutting down; please send your message again.");

  RecordingSink media;
  job.text = "";
  job.media_json = R"([{"kind":"image","url":"http://x"}])";
  agent.run(job, media);
  EXPECT_EQ(media.blocks.back(), "[image]");
}

class FakeOpenAi {
 public:
  FakeOpenAi() {
    server_.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
      {
        std::lock_guard lock(mutex_);
        bodies_.push_back(json::parse(req.body));
        auth_ = req.get_header_value("Authorization");
      }
      if (status_ != 200) {
        res.status = status_;
        res.set_content(R"({"error":{"message":"invalid api key"}})", "application/json");
        return;
      }
      res.set_content(
          "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n"
          "data: {\"choices\":[{\"delta\":{\"reasoning_content\":\"secret thoughts\"}}]}\n\n"
          "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n"
          "data: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\n" +
              std::string(with_done_ ? "data: [DONE]\n\n" : ""),
          "text/event-stream");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    for (int i = 0; i < 200 && !server_.is_running(); ++i) std::this_thread::sleep_for(5ms);
  }
  ~FakeOpenAi() {
    server_.stop();
    thread_.join();
  }
  OpenAiSettings settings() const {
    OpenAiSettings s;
    s.base_url = "http://127.0.0.1:" + std::to_string(port_) + "/v1";
    s.api_key = "sk-unit";
    s.model = "fake";
    s.timeout_seconds = 5;
    return s;
  }
  std::vector<json> bodies() {
    std::lock_guard lock(mutex_);
    return bodies_;
  }
  std::string auth() {
    std::lock_guard lock(mutex_);
    return auth_;
  }
  std::atomic<int> status_{200};
  std::atomic<bool> with_done_{true};

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mutex_;
  std::vector<json> bodies_;
  std::string auth_;
};

TEST(OpenAiAgent, StreamsDeltasKeepsHistoryAndSkipsReasoning) {
  FakeOpenAi fake;
  OpenAiAgent agent(fake.settings());
  RecordingSink first;
  Job job = job_for("u", 0);
  job.text = "hi";
  agent.run(job, first);
  EXPECT_EQ(first.blocks, (std::vector<std::string>{"Hel", "lo"}));
  EXPECT_EQ(first.finished, "done");
  EXPECT_EQ(fake.auth(), "Bearer sk-unit");
  RecordingSink second;
  job.text = "again";
  agent.run(job, second);
  auto bodies = fake.bodies();
  ASSERT_EQ(bodies.size(), 2u);
  EXPECT_EQ(bodies[0]["stream"], true);
  const auto& messages = bodies[1]["messages"];
  ASSERT_EQ(messages.size(), 3u);  // user, assistant, user
  EXPECT_EQ(messages[1]["content"], "Hello");
  EXPECT_EQ(messages[2]["content"], "again");
}

TEST(OpenAiAgent, ErrorsBecomeReadableFailures) {
  FakeOpenAi fake;
  fake.status_ = 401;
  OpenAiAgent agent(fake.settings());
  RecordingSink sink;
  agent.run(job_for("u", 0), sink);
  EXPECT_EQ(sink.finished, "fail: The model endpoint failed: HTTP 401: invalid api key");

  OpenAiSettings closed = fake.settings();
  closed.base_url = "http://127.0.0.1:1/v1";
  OpenAiAgent unreachable(closed);
  RecordingSink refused;
  unreachable.run(job_for("u", 0), refused);
  EXPECT_NE(refused.finished.find("fail: The model endpoint failed: cannot reach http://127.0.0.1:1"), std::string::npos)
      << refused.finished;
}

TEST(OpenAiAgent, AStreamWithoutDoneStillAnswers) {
  FakeOpenAi fake;
  fake.with_done_ = false;
  OpenAiAgent agent(fake.settings());
  RecordingSink sink;
  agent.run(job_for("u", 0), sink);
  EXPECT_EQ(sink.finished, "done");
  EXPECT_EQ(sink.blocks.size(), 2u);
}

}  // namespace
}  // namespace cwc::gateway
