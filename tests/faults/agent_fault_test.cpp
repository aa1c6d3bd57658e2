// The OpenAI agent's own fault handling, in process (no gateway binary): the total deadline, the
// SSE error event vs `"error": null`, and cancel() racing with the request's connect. The fake
// endpoint is tests/support/fake_openai_server.*; the sink is the gateway tests' RecordingSink.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "agents.h"
#include "gateway/gateway_test_util.h"
#include "support/fake_openai_server.h"

namespace cwc::gateway {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using cwc::testing::FakeOpenAiOptions;
using cwc::testing::FakeOpenAiServer;
using gwtest::kShutdownText;
using gwtest::make_job;
using gwtest::RecordingSink;

OpenAiSettings settings_for(const FakeOpenAiServer& server, int timeout_seconds) {
  OpenAiSettings s;
  s.base_url = server.base_url();
  s.api_key = "sk-unit";
  s.model = "fake-model";
  s.timeout_seconds = timeout_seconds;
  return s;
}

TEST(GatewayAgentFault, TimeoutTextIsReadable) {
  EXPECT_EQ(OpenAiAgent::timeout_text(60, false), "\xe2\x9a\xa0\xef\xb8\x8f The model did not answer in 60 s; please try again.");
  EXPECT_EQ(OpenAiAgent::timeout_text(5, true),
            "\xe2\x9a\xa0\xef\xb8\x8f The model did not finish its answer in 5 s; please try again.");
}

TEST(GatewayAgentFault, ErrorNullIsNotAnErrorButAnErrorObjectIs) {
  std::string error;
  EXPECT_EQ(extract_delta_content(R"({"error":null,"choices":[{"delta":{"content":"Hi"}}]})", &error), "Hi");
  EXPECT_TRUE(error.empty()) << error;
  EXPECT_EQ(extract_delta_content(R"({"error":{"message":"overloaded","type":"server_error"}})", &error), "");
  EXPECT_EQ(error, "overloaded");
  error.clear();
  extract_delta_content(R"({"error":"rate limited"})", &error);
  EXPECT_EQ(error, "rate limited");
  error.clear();
  extract_delta_content(R"({"error":{"code":503}})", &error);  // no message: still an error, still readable
  EXPECT_EQ(error, R"(error event {"code":503})");
}

// A model that keeps sending, slower than the deadline allows: the deadline is for the whole
// answer, not per read (each chunk arrives well within the read timeout).
TEST(GatewayAgentFault, DeadlineCoversTheWholeAnswer) {
  FakeOpenAiOptions options;
  options.chunks = {"a", "b", "c", "d", "e", "f", "g", "h"};
  options.delay_ms = 300;  // 2.4 s in all
  FakeOpenAiServer server(options);
  OpenAiAgent agent(settings_for(server, 1));
  RecordingSink sink;
  const auto begin = Clock::now();
  agent.run(make_job("alice", "hi"), sink);
  const auto took = Clock::now() - begin;
  EXPECT_GE(took, 950ms);
  EXPECT_LT(took, 1600ms);
  EXPECT_FALSE(sink.blocks().empty());
  EXPECT_LT(sink.blocks().size(), 5u);
  EXPECT_EQ(sink.outcome(), "fail: " + OpenAiAgent::timeout_text(1, true));
  EXPECT_EQ(sink.finish_calls(), 1);
  EXPECT_FALSE(sink.pushed_after_finish());
}

TEST(GatewayAgentFault, HungModelEndsAtTheDeadline) {
  FakeOpenAiOptions options;
  options.hang = true;
  FakeOpenAiServer server(options);
  OpenAiAgent agent(settings_for(server, 1));
  RecordingSink sink;
  const auto begin = Clock::now();
  agent.run(make_job("alice", "hi"), sink);
  EXPECT_LT(Clock::now() - begin, 1600ms);
  EXPECT_TRUE(sink.blocks().empty());
  EXPECT_EQ(sink.outcome(), "fail: " + OpenAiAgent::timeout_text(1, false));
}

TEST(GatewayAgentFault, AnAnswerWithinTheDeadlineIsUntouched) {
  FakeOpenAiOptions options;
  options.delay_ms = 50;
  options.null_error_field = true;
  FakeOpenAiServer server(options);
  OpenAiAgent agent(settings_for(server, 2));
  RecordingSink sink;
  agent.run(make_job("alice", "hi"), sink);
  EXPECT_EQ(sink.joined(), "Hello from the fake model.");
  EXPECT_EQ(sink.outcome(), "done");
}

TEST(GatewayAgentFault, SseErrorEventEndsTheAnswerWithItsMessage) {
  FakeOpenAiOptions options;
  options.error_event = "The server had an error";
  FakeOpenAiServer server(options);
  OpenAiAgent agent(settings_for(server, 2));
  RecordingSink sink;
  agent.run(make_job("alice", "hi"), sink);
  EXPECT_EQ(sink.joined(), "Hello");
  EXPECT_EQ(sink.outcome(), "fail: The model endpoint failed: The server had an error");
}

// cancel() at shutdown lands at any point of a run: before the request is registered, between
// registering and connecting (where cpp-httplib's stop() has no socket to shut down yet), or
// while the hung model is being read. Whatever the moment, run() must return promptly with the
// shutdown text; before the fix, a cancel in the connect window left the run blocked for the
// whole timeout (30 s here).
TEST(GatewayAgentFault, CancelRacingTheConnectNeverHangs) {
  FakeOpenAiOptions options;
  options.hang = true;
  FakeOpenAiServer server(options);
  std::mt19937 random(7);
  std::uniform_int_distribution<int> delay_us(0, 3000);
  Clock::duration slowest{};
  for (int i = 0; i < 60; ++i) {
    OpenAiAgent agent(settings_for(server, 30));
    RecordingSink sink;
    std::thread runner([&] { agent.run(make_job("alice", "hi"), sink); });
    std::this_thread::sleep_for(std::chrono::microseconds(delay_us(random)));
    const auto cancelled = Clock::now();
    sink.cancel();   // the router's cancelled() turns true first ...
    agent.cancel();  // ... then the shutdown hook aborts the request
    runner.join();
    const auto took = Clock::now() - cancelled;
    slowest = std::max(slowest, took);
    ASSERT_LT(took, 2s) << "iteration " << i;
    ASSERT_EQ(sink.outcome(), std::string("fail: ") + kShutdownText) << "iteration " << i;
    ASSERT_EQ(sink.finish_calls(), 1);
  }
  std::cout << "slowest cancel: " << std::chrono::duration_cast<std::chrono::milliseconds>(slowest).count() << " ms\n";
}

// Concurrent runs against a hung model, one cancel(): every run returns; none is left blocked.
TEST(GatewayAgentFault, CancelEndsEveryConcurrentRun) {
  FakeOpenAiOptions options;
  options.hang = true;
  FakeOpenAiServer server(options);
  OpenAiAgent agent(settings_for(server, 30));
  constexpr int kRuns = 6;
  std::vector<RecordingSink> sinks(kRuns);
  std::vector<std::thread> runners;
  for (int i = 0; i < kRuns; ++i) {
    runners.emplace_back([&, i] { agent.run(make_job("user" + std::to_string(i), "hi", "s" + std::to_string(i)), sinks[i]); });
  }
  for (auto deadline = Clock::now() + 5s; server.requests() < kRuns && Clock::now() < deadline;) {
    std::this_thread::sleep_for(5ms);
  }
  const auto cancelled = Clock::now();
  for (auto& sink : sinks) sink.cancel();
  agent.cancel();
  for (auto& t : runners) t.join();
  EXPECT_LT(Clock::now() - cancelled, 2s);
  for (const auto& sink : sinks) EXPECT_EQ(sink.outcome(), std::string("fail: ") + kShutdownText);
}

}  // namespace
}  // namespace cwc::gateway
