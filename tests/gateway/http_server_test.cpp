// KeepAliveServer (gateway/http_server.h) over raw loopback sockets: which requests the event
// loops answer and which go to a worker, and that every HTTP/1.1 shape a client may send still
// gets its answer (pipelining, requests arriving in pieces, 100-continue, chunked bodies, large
// bodies, slow readers, keep-alive limits and timeouts, stop with connections open).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "http_server.h"

namespace cwc::gateway {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct Reply {
  int status = 0;
  std::string head;  // status line and headers
  std::string body;
};

// A blocking loopback client that writes exactly what a test gives it and parses responses
// framed by Content-Length (all the test server sends).
class RawClient {
 public:
  explicit RawClient(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    const int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~RawClient() { ::close(fd_); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool connected() const { return connected_; }

  void send_all(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      ASSERT_GT(n, 0) << "send failed: " << std::strerror(errno);
      data.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  // Reads until `marker` is in the unread input; returns everything up to and including it.
  std::optional<std::string> read_until(std::string_view marker, std::chrono::milliseconds timeout = 5s) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      if (const auto at = in_.find(marker); at != std::string::npos) {
        std::string out = in_.substr(0, at + marker.size());
        in_.erase(0, at + marker.size());
        return out;
      }
      if (!fill(deadline)) return std::nullopt;
    }
  }

  std::optional<Reply> read_reply(std::chrono::milliseconds timeout = 5s) {
    const auto deadline = Clock::now() + timeout;
    auto head = read_until("\r\n\r\n", timeout);
    if (!head) return std::nullopt;
    Reply reply;
    reply.head = *head;
    reply.status = std::atoi(reply.head.c_str() + 9);
    std::size_t length = 0;
    if (const auto at = reply.head.find("Content-Length: "); at != std::string::npos) {
      length = std::strtoull(reply.head.c_str() + at + 16, nullptr, 10);
    }
    while (in_.size() < length) {
      if (!fill(deadline)) return std::nullopt;
    }
    reply.body = in_.substr(0, length);
    in_.erase(0, length);
    return reply;
  }

  // True when the server closes the connection before `timeout` (and nothing more arrives).
  bool closed_by_server(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      const int wait = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
      if (wait <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, wait) <= 0) return false;
      char byte;
      const ssize_t n = ::recv(fd_, &byte, 1, 0);
      if (n == 0 || (n < 0 && errno == ECONNRESET)) return true;
      if (n > 0) in_ += byte;
    }
  }

 private:
  bool fill(Clock::time_point deadline) {
    const int wait = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
    if (wait <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, wait) <= 0) return false;
    char buf[65536];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return false;
    in_.append(buf, static_cast<std::size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string in_;
};

std::string get(std::string_view path) { return "GET " + std::string(path) + " HTTP/1.1\r\nHost: t\r\n\r\n"; }
std::string post(std::string_view path, std::string_view body) {
  return "POST " + std::string(path) + " HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + std::string(body);
}

class GatewayHttpServer : public ::testing::Test {
 protected:
  // Four workers: fewer than the connections several tests open, so pinning would show.
  void start(std::size_t threads = 4, std::size_t loops = 0) {
    server_ = std::make_unique<KeepAliveServer>(threads, 50ms, loops);
    server_->set_tcp_nodelay(true);
    server_->set_keep_alive_timeout(keep_alive_timeout_);
    server_->set_keep_alive_max_count(keep_alive_max_count_);
    server_->set_read_timeout(5, 0);
    server_->set_write_timeout(5, 0);
    server_->set_payload_max_length(16u * 1024u * 1024u);
    server_->Get("/hello", [](const httplib::Request&, httplib::Response& res) { res.set_content("hi", "text/plain"); });
    server_->Post("/echo", [](const httplib::Request& req, httplib::Response& res) {
      res.set_content(req.body, "application/octet-stream");
    });
    server_->Get("/big", [](const httplib::Request& req, httplib::Response& res) {
      res.set_content(std::string(std::stoul(req.get_param_value("n")), 'b'), "application/octet-stream");
    });
    port_ = server_->bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    listener_ = std::thread([this] { server_->listen_after_bind(); });
    ASSERT_TRUE(server_->wait_until_serving(5s));
  }
  void TearDown() override {
    if (!server_) return;
    server_->stop();
    if (listener_.joinable()) listener_.join();
    server_.reset();
  }

  // One request on a new connection, as raw bytes; its reply.
  std::optional<Reply> exchange(std::string_view raw_request) {
    RawClient client(port_);
    client.send_all(raw_request);
    return client.read_reply();
  }

  std::unique_ptr<KeepAliveServer> server_;
  std::thread listener_;
  int port_ = 0;
  time_t keep_alive_timeout_ = 5;
  std::size_t keep_alive_max_count_ = 1000;
};

TEST_F(GatewayHttpServer, RunsThreeEventLoopsPerCoreByDefault) {
  start();
  EXPECT_EQ(server_->loop_count(), KeepAliveServer::kLoopsPerCore * std::max(1u, std::thread::hardware_concurrency()));
}

TEST_F(GatewayHttpServer, PipelinedRequestsAreAnsweredInOrderOnTheEventLoop) {
  start();
  RawClient client(port_);
  ASSERT_TRUE(client.connected());
  client.send_all(get("/hello") + post("/echo", "first") + post("/echo", "second") + get("/hello"));
  const char* const expected[] = {"hi", "first", "second", "hi"};
  for (const char* body : expected) {
    auto reply = client.read_reply();
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->status, 200);
    EXPECT_EQ(reply->body, body);
  }
  EXPECT_EQ(server_->served_inline(), 4u);
  EXPECT_EQ(server_->served_by_workers(), 0u);
}

// Back-to-back requests on many connections, more loops than this machine has cores: a request
// that arrives between a loop re-arming its connection and letting go of it is served by that
// loop once more (ready_again), never lost, stalled or answered twice. TSan runs this too.
TEST_F(GatewayHttpServer, BackToBackRequestsOnManyConnectionsAreNeverLostOrDuplicated) {
  start(4, 8);
  constexpr int kClients = 16;
  constexpr int kRounds = 300;
  std::atomic<int> failures{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      RawClient client(port_);
      if (!client.connected()) {
        ++failures;
        return;
      }
      for (int i = 0; i < kRounds; ++i) {
        const std::string body = std::to_string(c) + ":" + std::to_string(i);
        client.send_all(post("/echo", body));
        auto reply = client.read_reply(5s);
        if (!reply || reply->status != 200 || reply->body != body) {
          ++failures;
          return;
        }
      }
    });
  }
  for (auto& client : clients) client.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(server_->served_inline() + server_->served_by_workers(), static_cast<std::uint64_t>(kClients * kRounds));
  RecordProperty("ready_again", std::to_string(server_->ready_again_count()));
}

TEST_F(GatewayHttpServer, ARequestArrivingInPiecesIsFinishedByAWorkerAndTheConnectionComesBack) {
  start();
  RawClient client(port_);
  client.send_all("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Le");
  std::this_thread::sleep_for(100ms);
  client.send_all("ngth: 10\r\n\r\nhello");
  std::this_thread::sleep_for(100ms);
  client.send_all("world");
  auto reply = client.read_reply();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->body, "helloworld");
  EXPECT_GE(server_->served_by_workers(), 1u);
  // After the worker's linger the connection is back with the loops, still open.
  std::this_thread::sleep_for(200ms);
  const auto inline_before = server_->served_inline();
  client.send_all(get("/hello"));
  reply = client.read_reply();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->body, "hi");
  EXPECT_EQ(server_->served_inline(), inline_before + 1);
}

TEST_F(GatewayHttpServer, ExpectContinueGetsTheInterimAnswerBeforeTheBody) {
  start();
  RawClient client(port_);
  client.send_all("POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
  auto interim = client.read_until("\r\n\r\n");
  ASSERT_TRUE(interim.has_value());
  EXPECT_EQ(interim->rfind("HTTP/1.1 100 Continue", 0), 0u) << *interim;
  client.send_all("ping");
  auto reply = client.read_reply();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->body, "ping");
}

TEST_F(GatewayHttpServer, ChunkedBodiesAreDecoded) {
  start();
  auto reply = exchange("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n");
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->body, "Wikipedia");
}

TEST_F(GatewayHttpServer, BodiesOverTheInlineLimitAreReadByAWorker) {
  start();
  RawClient client(port_);
  std::string body(2 * 1024 * 1024 + 17, 'x');
  for (std::size_t i = 0; i < body.size(); i += 4096) body[i] = static_cast<char>('a' + (i / 4096) % 26);
  client.send_all(post("/echo", body));
  auto reply = client.read_reply(10s);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->body.size(), body.size());
  EXPECT_TRUE(reply->body == body);
  EXPECT_GE(server_->served_by_workers(), 1u);
}

TEST_F(GatewayHttpServer, ManyKeepAliveConnectionsDoNotPinTheFourWorkers) {
  start(4);
  std::vector<std::unique_ptr<RawClient>> clients;
  for (int i = 0; i < 150; ++i) clients.push_back(std::make_unique<RawClient>(port_));
  for (int round = 0; round < 2; ++round) {
    for (auto& c : clients) c->send_all(post("/echo", "r" + std::to_string(round)));
    for (auto& c : clients) {
      auto reply = c->read_reply(5s);
      ASSERT_TRUE(reply.has_value()) << "round " << round;
      EXPECT_EQ(reply->body, "r" + std::to_string(round));
    }
  }
}

TEST_F(GatewayHttpServer, ASlowReaderDoesNotHoldUpOtherConnections) {
  start(4, /*loops=*/1);  // one loop: had it waited for the slow reader, nobody else would be served
  // More than the socket buffers on both sides hold (loopback autotuning stops at a few MiB),
  // so the loop cannot send it at once and must leave it to a worker.
  constexpr std::size_t kBig = 24u * 1024u * 1024u;
  RawClient slow(port_);
  slow.send_all(get("/big?n=" + std::to_string(kBig)));
  std::this_thread::sleep_for(100ms);
  const auto started = Clock::now();
  for (int i = 0; i < 5; ++i) {
    RawClient other(port_);
    other.send_all(get("/hello"));
    auto reply = other.read_reply(2s);
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->body, "hi");
  }
  EXPECT_LT(Clock::now() - started, 2s);
  auto big = slow.read_reply(10s);
  ASSERT_TRUE(big.has_value());
  EXPECT_EQ(big->body.size(), kBig);
  EXPECT_EQ(big->body.find_first_not_of('b'), std::string::npos);
  EXPECT_GE(server_->served_inline(), 6u);  // the big answer and the five others were built on the loops
}

TEST_F(GatewayHttpServer, KeepAliveMaxCountClosesAfterTheLastAllowedRequest) {
  keep_alive_max_count_ = 3;
  start();
  RawClient client(port_);
  for (int i = 1; i <= 3; ++i) {
    client.send_all(get("/hello"));
    auto reply = client.read_reply();
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->head.find("Connection: close") != std::string::npos, i == 3) << reply->head;
  }
  EXPECT_TRUE(client.closed_by_server(2s));
}

TEST_F(GatewayHttpServer, IdleConnectionsAreClosedAfterTheKeepAliveTimeout) {
  keep_alive_timeout_ = 1;
  start();
  RawClient client(port_);
  client.send_all(get("/hello"));
  ASSERT_TRUE(client.read_reply().has_value());
  const auto idle_from = Clock::now();
  EXPECT_TRUE(client.closed_by_server(4s));
  EXPECT_GE(Clock::now() - idle_from, 900ms);
}

TEST_F(GatewayHttpServer, GarbageGetsA400) {
  start();
  auto reply = exchange("NOT HTTP AT ALL\r\n\r\n");
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 400);
}

TEST_F(GatewayHttpServer, StopReturnsPromptlyWithConnectionsOpenAndHalfSentRequests) {
  start();
  std::vector<std::unique_ptr<RawClient>> clients;
  for (int i = 0; i < 20; ++i) {
    clients.push_back(std::make_unique<RawClient>(port_));
    clients.back()->send_all(get("/hello"));
    ASSERT_TRUE(clients.back()->read_reply().has_value());
  }
  RawClient half(port_);
  half.send_all("POST /echo HTTP/1.1\r\nContent-Length: 100\r\n\r\nonly part");
  std::this_thread::sleep_for(100ms);
  const auto started = Clock::now();
  server_->stop();
  listener_.join();
  server_.reset();
  EXPECT_LT(Clock::now() - started, 7s);  // the half-sent request keeps its read timeout at most
  for (auto& c : clients) EXPECT_TRUE(c->closed_by_server(1s));
}

}  // namespace
}  // namespace cwc::gateway
