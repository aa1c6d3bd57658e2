// The deterministic echo agent against a recording ReplySink.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "agents.h"
#include "gateway_test_util.h"

namespace cwc::gateway {
namespace {

using namespace std::chrono_literals;
using gwtest::kShutdownText;
using gwtest::make_job;
using gwtest::RecordingSink;
using Blocks = std::vector<std::string>;

TEST(EchoAgent, AnswersInTwoBlocksThenDone) {
  EchoAgent agent(EchoSettings{5});
  RecordingSink sink;
  const auto started = std::chrono::steady_clock::now();
  agent.run(make_job("alice", "hello there"), sink);
  EXPECT_GE(std::chrono::steady_clock::now() - started, 5ms);  // the blocks are delay_ms apart
  EXPECT_EQ(sink.blocks(), (Blocks{"echo: ", "hello there"}));
  EXPECT_EQ(sink.outcome(), "done");
  EXPECT_EQ(sink.finish_calls(), 1);
  EXPECT_FALSE(sink.pushed_after_finish());
}

TEST(EchoAgent, ZeroDelayStillAnswers) {
  EchoAgent agent(EchoSettings{0});
  RecordingSink sink;
  agent.run(make_job("alice", "x"), sink);
  EXPECT_EQ(sink.joined(), "echo: x");
  EXPECT_EQ(sink.outcome(), "done");
}

TEST(EchoAgent, FailCommandFailsOnPurpose) {
  EchoAgent agent(EchoSettings{1});
  for (const char* text : {"/fail", "/fail please", "/failure"}) {
    RecordingSink sink;
    agent.run(make_job("alice", text), sink);
    EXPECT_EQ(sink.outcome(), "fail: echo agent failed on purpose") << text;
    EXPECT_TRUE(sink.blocks().empty()) << text;
    EXPECT_EQ(sink.finish_calls(), 1);
  }
  // Only a leading "/fail" counts.
  RecordingSink sink;
  agent.run(make_job("alice", "please /fail"), sink);
  EXPECT_EQ(sink.outcome(), "done");
  EXPECT_EQ(sink.joined(), "echo: please /fail");
}

TEST(EchoAgent, CancellationDuringTheDelayFailsWithTheShutdownText) {
  EchoAgent agent(EchoSettings{10000});
  RecordingSink sink;
  std::thread runner([&] { agent.run(make_job("alice", "hello"), sink); });
  ASSERT_TRUE(sink.wait_until_waiting(2s));
  const auto cancelled_at = std::chrono::steady_clock::now();
  sink.cancel();
  runner.join();
  EXPECT_LT(std::chrono::steady_clock::now() - cancelled_at, 1s);  // not the full 10 s delay
  EXPECT_EQ(sink.blocks(), Blocks{"echo: "});
  EXPECT_EQ(sink.outcome(), std::string("fail: ") + kShutdownText);
  EXPECT_EQ(sink.finish_calls(), 1);
}

TEST(EchoAgent, CancellationBeforeAFailCommandAlsoSaysShutdown) {
  EchoAgent agent(EchoSettings{10000});
  RecordingSink sink;
  sink.cancel();
  agent.run(make_job("alice", "/fail"), sink);
  EXPECT_EQ(sink.outcome(), std::string("fail: ") + kShutdownText);
}

TEST(EchoAgent, MediaOnlyMessage) {
  EchoAgent agent(EchoSettings{0});
  RecordingSink sink;
  auto job = make_job("alice", "");
  job.msgtype = "image";
  job.media_json = R"([{"kind":"image","url":"https://wework.qpic.cn/x"}])";
  agent.run(job, sink);
  EXPECT_EQ(sink.blocks(), (Blocks{"echo: ", "[image]"}));
  EXPECT_EQ(sink.outcome(), "done");
}

TEST(EchoAgent, TextWithMediaAndOddMediaJson) {
  EchoAgent agent(EchoSettings{0});
  {
    RecordingSink sink;
    auto job = make_job("alice", "look");
    job.msgtype = "mixed";
    job.media_json = R"([{"kind":"image","url":"u1"},{"kind":"file","url":"u2"},{"url":"u3"}])";
    agent.run(job, sink);
    EXPECT_EQ(sink.joined(), "echo: look [image][file][media]");
  }
  for (const char* media : {"", "[]", "not json", R"({"kind":"image"})"}) {
    RecordingSink sink;
    auto job = make_job("alice", "plain");
    job.media_json = media;
    agent.run(job, sink);
    EXPECT_EQ(sink.joined(), "echo: plain") << media;
    EXPECT_EQ(sink.outcome(), "done") << media;
  }
}

}  // namespace
}  // namespace cwc::gateway
