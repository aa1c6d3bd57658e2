// The shared fake model endpoint (tests/support/fake_openai_server.h) behaves as documented, so
// tests that build on it fail for their own reasons only.
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>

#include "support/fake_openai_server.h"

namespace cwc::testing {
namespace {

using namespace std::chrono_literals;

constexpr const char* kRequest = R"({"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]})";

// Options with a few fields changed (GCC's -Wmissing-field-initializers rejects designated
// initializers that leave fields out).
template <class Tweak>
FakeOpenAiOptions with(Tweak tweak) {
  FakeOpenAiOptions options;
  tweak(options);
  return options;
}

httplib::Client client_for(const FakeOpenAiServer& server) {
  httplib::Client client("127.0.0.1", server.port());
  client.set_connection_timeout(2, 0);
  client.set_read_timeout(5, 0);
  return client;
}

TEST(FakeOpenAiServer, StreamsChunksThenDoneAndRecordsTheRequest) {
  FakeOpenAiServer server(with([](auto& o) {
    o.chunks = {"a", "b"};
    o.api_key = "sk-test";
  }));
  EXPECT_EQ(server.base_url(), "http://127.0.0.1:" + std::to_string(server.port()) + "/v1");
  auto client = client_for(server);
  client.set_bearer_token_auth("sk-test");
  auto res = client.Post("/v1/chat/completions", kRequest, "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/event-stream");
  const auto a = res->body.find(R"("content":"a")");
  const auto b = res->body.find(R"("content":"b")");
  ASSERT_NE(a, std::string::npos) << res->body;
  ASSERT_NE(b, std::string::npos) << res->body;
  EXPECT_LT(a, b);
  EXPECT_EQ(res->body.substr(res->body.size() - 14), "data: [DONE]\n\n");
  EXPECT_EQ(server.requests(), 1);
  EXPECT_EQ(server.last_request()["messages"][0]["content"], "hi");
  EXPECT_EQ(server.last_authorization(), "Bearer sk-test");
}

TEST(FakeOpenAiServer, StatusAndApiKeyFailures) {
  FakeOpenAiServer server(with([](auto& o) { o.status = 503; }));
  auto client = client_for(server);
  auto res = client.Post("/v1/chat/completions", kRequest, "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  EXPECT_NE(res->body.find("\"error\""), std::string::npos);

  server.set_options(with([](auto& o) { o.api_key = "sk-right"; }));
  client.set_bearer_token_auth("sk-wrong");
  res = client.Post("/v1/chat/completions", kRequest, "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
  EXPECT_EQ(res->body.find("sk-"), std::string::npos) << "the fake never echoes keys";
  EXPECT_EQ(server.requests(), 2);
}

TEST(FakeOpenAiServer, CloseMidStreamBreaksTheBodyOff) {
  FakeOpenAiServer server(with([](auto& o) {
    o.chunks = {"first", "second"};
    o.close_mid_stream = true;
  }));
  auto client = client_for(server);
  std::string received;
  httplib::Request request;
  request.method = "POST";
  request.path = "/v1/chat/completions";
  request.body = kRequest;
  request.set_header("Content-Type", "application/json");
  request.content_receiver = [&](const char* data, std::size_t len, std::uint64_t, std::uint64_t) {
    received.append(data, len);
    return true;
  };
  auto res = client.send(request);
  EXPECT_FALSE(res);  // the chunked body never ends properly
  EXPECT_NE(received.find("first"), std::string::npos);
  EXPECT_EQ(received.find("second"), std::string::npos);
  EXPECT_EQ(received.find("[DONE]"), std::string::npos);
}

TEST(FakeOpenAiServer, AHungStreamTimesTheClientOutAndStopIsPrompt) {
  auto server = std::make_unique<FakeOpenAiServer>(with([](auto& o) { o.hang = true; }));
  httplib::Client client("127.0.0.1", server->port());
  client.set_read_timeout(0, 300 * 1000);
  auto res = client.Post("/v1/chat/completions", kRequest, "application/json");
  EXPECT_FALSE(res);
  const auto start = std::chrono::steady_clock::now();
  server.reset();  // must not wait for the hung handler
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
}

TEST(FakeOpenAiServer, DelayIsHonouredAndStatsCountRequests) {
  FakeOpenAiServer server(with([](auto& o) {
    o.chunks = {"x", "y"};
    o.delay_ms = 100;
  }));
  auto client = client_for(server);
  const auto start = std::chrono::steady_clock::now();
  auto res = client.Post("/v1/chat/completions", kRequest, "application/json");
  ASSERT_TRUE(res);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 190ms);
  auto stats = client.Get("/stats");
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->body, R"({"requests":1})");
}

}  // namespace
}  // namespace cwc::testing
