// The gateway's outbound HTTP for the plugin (callback_fetch): limits, outcomes, and the worker
// pool's promise of exactly one completion per accepted request.
#include "fetcher.h"

#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

namespace cwc::gateway {
namespace {

// A loopback server with a few behaviours, stopped by the destructor.
class LocalServer {
 public:
  LocalServer() {
    server_.Get("/small", [](const httplib::Request&, httplib::Response& res) { res.set_content("hello", "text/plain"); });
    server_.Get("/big", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(std::string(64 * 1024, 'b'), "application/octet-stream");
    });
    server_.Get("/slow", [](const httplib::Request&, httplib::Response& res) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1500));
      res.set_content("late", "text/plain");
    });
    server_.Get("/missing", [](const httplib::Request&, httplib::Response& res) { res.status = 404; });
    server_.Post("/response", [this](const httplib::Request& req, httplib::Response& res) {
      {
        std::lock_guard lock(mutex_);
        posted_ = req.body;
        content_type_ = req.get_header_value("Content-Type");
      }
      res.set_content(R"({"errcode":0,"errmsg":"ok"})", "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ~LocalServer() {
    server_.stop();
    thread_.join();
  }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
  std::pair<std::string, std::string> posted() {
    std::lock_guard lock(mutex_);
    return {posted_, content_type_};
  }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mutex_;
  std::string posted_, content_type_;
};

FetchJob get(const std::string& url, std::uint64_t max_bytes = 1 << 20, std::uint32_t timeout_ms = 5000) {
  FetchJob job;
  job.method = "GET";
  job.url = url;
  job.max_response_bytes = max_bytes;
  job.timeout_ms = timeout_ms;
  return job;
}

TEST(GatewayFetch, OutcomesAndLimits) {
  LocalServer server;
  auto ok = perform_fetch(get(server.url("/small")));
  EXPECT_EQ(ok.outcome, FetchResult::Outcome::Ok);
  EXPECT_EQ(ok.http_status, 200);
  EXPECT_EQ(ok.body, "hello");

  auto missing = perform_fetch(get(server.url("/missing")));
  EXPECT_EQ(missing.outcome, FetchResult::Outcome::Ok) << "an HTTP answer is Ok; the plugin judges the status";
  EXPECT_EQ(missing.http_status, 404);

  auto big = perform_fetch(get(server.url("/big"), 1000));
  EXPECT_EQ(big.outcome, FetchResult::Outcome::TooLarge);
  EXPECT_TRUE(big.body.empty());

  const auto started = std::chrono::steady_clock::now();
  auto slow = perform_fetch(get(server.url("/slow"), 1000, 1000));
  EXPECT_EQ(slow.outcome, FetchResult::Outcome::Timeout) << slow.error;
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(1400));

  auto not_http = perform_fetch(get("ftp://127.0.0.1/x"));
  EXPECT_EQ(not_http.outcome, FetchResult::Outcome::Failed);
  EXPECT_EQ(not_http.error, "not an http(s) url");
}

TEST(GatewayFetch, RefusedConnectionIsAFailureWithAReadableCause) {
  // A port that was free a moment ago and has no listener (bound, never listened, closed).
  int port = 0;
  {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    port = ntohs(addr.sin_port);
    ::close(fd);
  }
  auto refused = perform_fetch(get("http://127.0.0.1:" + std::to_string(port) + "/x"));
  EXPECT_EQ(refused.outcome, FetchResult::Outcome::Failed);
  EXPECT_EQ(refused.error, "could not connect");
}

TEST(GatewayFetch, PostCarriesBodyAndContentType) {
  LocalServer server;
  FetchJob job;
  job.method = "POST";
  job.url = server.url("/response?response_code=abc");
  job.content_type = "application/json";
  job.body = R"({"msgtype":"markdown","markdown":{"content":"rest"}})";
  job.max_response_bytes = 4096;
  auto result = perform_fetch(job);
  EXPECT_EQ(result.outcome, FetchResult::Outcome::Ok);
  EXPECT_EQ(result.body, R"({"errcode":0,"errmsg":"ok"})");
  auto [body, content_type] = server.posted();
  EXPECT_EQ(body, job.body);
  EXPECT_EQ(content_type, "application/json");
}

TEST(GatewayFetch, PoolCompletesEveryAcceptedRequestExactlyOnce) {
  LocalServer server;
  std::mutex mutex;
  std::condition_variable done;
  std::map<std::uint64_t, int> completions;
  {
    Fetcher fetcher(3, 64, [&](std::uint64_t id, const FetchResult& result) {
      EXPECT_EQ(result.outcome, FetchResult::Outcome::Ok);
      std::lock_guard lock(mutex);
      ++completions[id];
      done.notify_all();
    });
    for (std::uint64_t id = 1; id <= 20; ++id) {
      auto job = get(server.url("/small"));
      job.id = id;
      ASSERT_TRUE(fetcher.submit(job));
    }
    std::unique_lock lock(mutex);
    ASSERT_TRUE(done.wait_for(lock, std::chrono::seconds(20), [&] { return completions.size() == 20; }));
  }
  for (const auto& [id, count] : completions) EXPECT_EQ(count, 1) << "request " << id;
}

TEST(GatewayFetch, StopCompletesQueuedRequestsAndRefusesNewOnes) {
  LocalServer server;
  std::atomic<int> shutting_down{0};
  std::atomic<int> total{0};
  Fetcher fetcher(1, 8, [&](std::uint64_t, const FetchResult& result) {
    ++total;
    if (result.error == "gateway shutting down") ++shutting_down;
  });
  int accepted = 0;
  auto slow = get(server.url("/slow"), 1000, 5000);
  // One worker busy with a slow request, the rest queued until the queue (8) is full.
  while (fetcher.submit(slow)) {
    ++accepted;
    ASSERT_LE(accepted, 9);
  }
  EXPECT_GE(accepted, 8);
  fetcher.stop();
  EXPECT_EQ(total.load(), accepted) << "every accepted request completed exactly once";
  EXPECT_GE(shutting_down.load(), accepted - 1) << "queued requests end as 'gateway shutting down'";
  EXPECT_FALSE(fetcher.submit(slow)) << "a stopped fetcher takes nothing";
}

}  // namespace
}  // namespace cwc::gateway
