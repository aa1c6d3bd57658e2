// The gateway's HTTP serving model on top of cpp-httplib 0.11: httplib still parses requests,
// routes them and writes responses (Server::process_request); this class replaces only its
// per-connection socket loop (the virtual process_and_close_socket, as httplib's own SSLServer
// does), for two reasons measured with bench/http_refresh.sh (docs/performance.md):
//  - Syscalls. httplib 0.11's SocketStream polls before every recv and twice before every send,
//    asks getpeername/getsockname on every request and writes headers and body separately:
//    ~12 syscalls and two TCP segments per request, which on a VM cost several times the
//    plugin's own work. Here a connection keeps one buffered stream: one blocking recv per
//    request, addresses read once per connection, and the whole response in one send.
//  - Keep-alive pinning. httplib serves a keep-alive connection on one pool thread for its whole
//    life, so `threads` idle connections starve everyone else. Here a connection that stays
//    quiet for `linger` (or at once, when others are waiting for a thread) is parked in an
//    epoll set watched by one thread and handed back to the pool when its next request
//    arrives: the pool bounds requests in progress, not open connections.
// Timeouts keep httplib's meaning: keep-alive idle (set_keep_alive_timeout), per-read and
// per-write (set_read_timeout / set_write_timeout), and keep_alive_max_count requests per
// connection. stop() ends lingering connections within one linger slice and parked ones at once.
// The listen backlog is raised from httplib's 5 to SOMAXCONN (bursts of connects were reset).
#pragma once

#include <httplib.h>
#include <netdb.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

namespace cwc::gateway {

class KeepAliveServer : public httplib::Server {
 public:
  // `threads`: workers serving requests; `linger`: how long a worker waits for the next request
  // on a keep-alive connection before parking it.
  KeepAliveServer(std::size_t threads, std::chrono::milliseconds linger)
      : threads_(std::max<std::size_t>(1, threads)), linger_(linger) {
    new_task_queue = [this] { return new Pool(*this, threads_); };
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    parker_ = std::thread([this] { park_loop(); });
  }

  ~KeepAliveServer() override {
    {
      std::lock_guard lock(park_mutex_);
      parker_stop_ = true;
    }
    parker_.join();
    close_parked();
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
  }

  KeepAliveServer(const KeepAliveServer&) = delete;
  KeepAliveServer& operator=(const KeepAliveServer&) = delete;

  // Blocks until the accept loop runs with its worker pool (or `timeout` passes). Call it after
  // starting listen_after_bind() on another thread and before anything may call stop(): the
  // pool re-listens on the socket as it starts, and stop() closes that socket (a SIGINT right
  // after start-up raced the two, found by TSan).
  bool wait_until_serving(std::chrono::milliseconds timeout) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!pool_.load() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return pool_.load() != nullptr;
  }

 private:
  using Clock = std::chrono::steady_clock;

  // One connection's buffered stream: reads ahead into `in_` (so pipelined requests survive
  // from one request to the next), collects the response in `out_` and sends it in one go.
  class Connection final : public httplib::Stream {
   public:
    Connection(int fd, const KeepAliveServer& server) : fd_(fd), server_(server) {
      read_address(true, remote_ip_, remote_port_);
      read_address(false, local_ip_, local_port_);
      // Blocking recv wakes at least every slice to check for stop() and its own deadline.
      const auto slice = std::chrono::duration_cast<std::chrono::microseconds>(server.linger_slice());
      timeval tv{};
      tv.tv_sec = static_cast<time_t>(slice.count() / 1000000);
      tv.tv_usec = static_cast<suseconds_t>(slice.count() % 1000000);
      setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    }
    ~Connection() override {
      ::shutdown(fd_, SHUT_RDWR);
      ::close(fd_);
    }

    bool is_readable() const override {
      if (in_off_ < in_.size()) return true;
      pollfd p{fd_, POLLIN, 0};
      return ::poll(&p, 1, server_.read_timeout_ms()) > 0;
    }
    bool is_writable() const override {
      pollfd p{fd_, POLLOUT, 0};
      return ::poll(&p, 1, 0) > 0 && !(p.revents & (POLLERR | POLLHUP));
    }

    ssize_t read(char* ptr, std::size_t size) override {
      if (in_off_ >= in_.size()) {
        // About to wait for the peer: whatever we owe it (e.g. "100 Continue") goes first.
        if (!flush()) return -1;
        const auto deadline = Clock::now() + std::chrono::milliseconds(server_.read_timeout_ms());
        if (fill(deadline, /*no_wait=*/false, /*between_requests=*/false) <= 0) return -1;
      }
      const std::size_t n = std::min(size, in_.size() - in_off_);
      std::memcpy(ptr, in_.data() + in_off_, n);
      in_off_ += n;
      return static_cast<ssize_t>(n);
    }

    ssize_t write(const char* ptr, std::size_t size) override {
      out_.append(ptr, size);
      if (out_.size() >= kFlushBytes && !flush()) return -1;
      return static_cast<ssize_t>(size);
    }

    void get_remote_ip_and_port(std::string& ip, int& port) const override {
      ip = remote_ip_;
      port = remote_port_;
    }
    void get_local_ip_and_port(std::string& ip, int& port) const override {
      ip = local_ip_;
      port = local_port_;
    }
    socket_t socket() const override { return fd_; }

    // Sends everything collected; false when the peer is gone or the write timeout passed.
    bool flush() {
      std::size_t sent = 0;
      const auto deadline = Clock::now() + std::chrono::milliseconds(server_.write_timeout_ms());
      while (sent < out_.size()) {
        const ssize_t n = ::send(fd_, out_.data() + sent, out_.size() - sent, MSG_NOSIGNAL);
        if (n > 0) {
          sent += static_cast<std::size_t>(n);
        } else if (n < 0 && (errno == EINTR || ((errno == EAGAIN || errno == EWOULDBLOCK) && Clock::now() < deadline))) {
          continue;  // SO_SNDTIMEO (the write timeout) expired once; the deadline decides
        } else {
          out_.clear();
          return false;
        }
      }
      out_.clear();
      return true;
    }

    bool has_input() const { return in_off_ < in_.size(); }

    // Waits for the first byte of the next request: >0 there is input; 0 none before
    // `deadline` or the server is stopping; <0 the peer closed or failed. `no_wait`: only look.
    int wait_for_request(Clock::time_point deadline, bool no_wait) {
      if (has_input()) return 1;
      return fill(deadline, no_wait, /*between_requests=*/true);
    }

    std::size_t served = 0;  // requests answered on this connection
    Clock::time_point last_active = Clock::now();

   private:
    static constexpr std::size_t kReadBytes = 16 * 1024;
    static constexpr std::size_t kFlushBytes = 64 * 1024;

    // One recv into the read buffer (SO_RCVTIMEO makes it wake every linger slice). 1: data;
    // 0: nothing before `deadline` (or, between requests, the server is stopping; a request
    // already started keeps its full read timeout, as with httplib); -1: closed or failed.
    int fill(Clock::time_point deadline, bool no_wait, bool between_requests) {
      in_.resize(kReadBytes);
      in_off_ = 0;
      for (;;) {
        const ssize_t n = ::recv(fd_, in_.data(), in_.size(), no_wait ? MSG_DONTWAIT : 0);
        if (n > 0) {
          in_.resize(static_cast<std::size_t>(n));
          return 1;
        }
        in_.clear();
        if (n == 0) return -1;  // orderly close by the peer
        if (errno == EINTR) {
          in_.resize(kReadBytes);
          continue;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
        if (no_wait || Clock::now() >= deadline || (between_requests && server_.stopping())) return 0;
        in_.resize(kReadBytes);
      }
    }

    void read_address(bool remote, std::string& ip, int& port) {
      // As httplib formats them (getnameinfo, numeric), but once per connection, not per request.
      sockaddr_storage addr{};
      socklen_t len = sizeof(addr);
      const int rc = remote ? getpeername(fd_, reinterpret_cast<sockaddr*>(&addr), &len)
                            : getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
      if (rc != 0) return;
      if (addr.ss_family == AF_INET) port = ntohs(reinterpret_cast<const sockaddr_in*>(&addr)->sin_port);
      else if (addr.ss_family == AF_INET6) port = ntohs(reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_port);
      else return;
      std::array<char, NI_MAXHOST> host{};
      if (getnameinfo(reinterpret_cast<const sockaddr*>(&addr), len, host.data(), static_cast<socklen_t>(host.size()),
                      nullptr, 0, NI_NUMERICHOST) == 0) {
        ip = host.data();
      }
    }

    int fd_;
    const KeepAliveServer& server_;
    std::string in_;
    std::size_t in_off_ = 0;
    std::string out_;
    std::string remote_ip_, local_ip_;
    int remote_port_ = 0, local_port_ = 0;
  };

  // Fixed worker threads; jobs are new connections (from httplib's accept loop) and parked
  // connections whose next request arrived.
  class Pool final : public httplib::TaskQueue {
   public:
    Pool(KeepAliveServer& server, std::size_t n) : server_(server) {
      // httplib listens with a backlog of 5: a burst of new connections (150 at once in the
      // test) overflows it and the kernel resets the excess. Listening again only resizes it.
      const socket_t listener = server_.svr_sock_;
      if (listener != INVALID_SOCKET) ::listen(listener, SOMAXCONN);
      for (std::size_t i = 0; i < n; ++i) workers_.emplace_back([this] { work(); });
      server_.pool_.store(this);
    }
    ~Pool() override = default;

    void enqueue(std::function<void()> fn) override { push(std::move(fn)); }
    bool push(std::function<void()> fn) {
      {
        std::lock_guard lock(mutex_);
        if (shutdown_) return false;
        jobs_.push_back(std::move(fn));
        waiting_.store(jobs_.size(), std::memory_order_relaxed);
      }
      cv_.notify_one();
      return true;
    }
    void shutdown() override {
      {
        // Under the parker's lock: once this returns, the parker no longer hands us work.
        std::lock_guard lock(server_.park_mutex_);
        server_.pool_.store(nullptr);
      }
      {
        std::lock_guard lock(mutex_);
        shutdown_ = true;
      }
      cv_.notify_all();
      for (auto& t : workers_) t.join();
      server_.close_parked();
    }
    // Someone is waiting for a worker: lingering would make them wait longer.
    bool has_waiting() const { return waiting_.load(std::memory_order_relaxed) > 0; }

   private:
    void work() {
      for (;;) {
        std::function<void()> fn;
        {
          std::unique_lock lock(mutex_);
          cv_.wait(lock, [&] { return shutdown_ || !jobs_.empty(); });
          if (jobs_.empty()) return;  // shutting down and drained
          fn = std::move(jobs_.front());
          jobs_.pop_front();
          waiting_.store(jobs_.size(), std::memory_order_relaxed);
        }
        fn();
      }
    }
    KeepAliveServer& server_;
    std::vector<std::thread> workers_;
    std::deque<std::function<void()>> jobs_;
    std::mutex mutex_;
    std::condition_variable cv_;
    bool shutdown_ = false;
    std::atomic<std::size_t> waiting_{0};
  };

  bool process_and_close_socket(socket_t sock) override {
    serve(std::make_unique<Connection>(sock, *this));
    return true;
  }

  // Requests on one connection until it closes, misbehaves, reaches keep_alive_max_count, or
  // goes quiet (then it is parked and serve() returns; the parker resumes it later).
  void serve(std::unique_ptr<Connection> conn) {
    while (!stopping()) {
      Pool* pool = pool_.load();
      const bool hurry = pool != nullptr && pool->has_waiting();
      const int ready = conn->wait_for_request(Clock::now() + linger_, hurry);
      if (ready < 0) return;  // closed by the peer
      if (ready == 0) {
        if (stopping()) return;
        park(std::move(conn));
        return;
      }
      const bool close_connection = conn->served + 1 >= keep_alive_max_count_;
      bool connection_closed = false;
      const bool ok = process_request(*conn, close_connection, connection_closed, nullptr);
      const bool sent = conn->flush();
      ++conn->served;
      conn->last_active = Clock::now();
      if (!ok || !sent || connection_closed || close_connection) return;
    }
  }

  void park(std::unique_ptr<Connection> conn) {
    const int fd = conn->socket();
    std::lock_guard lock(park_mutex_);
    if (parker_stop_ || epoll_fd_ < 0) return;  // conn closes here
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
    ev.data.fd = fd;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) return;
    parked_.emplace(fd, std::move(conn));
  }

  void park_loop() {
    std::array<epoll_event, 64> events{};
    for (;;) {
      const int n = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), 100);
      std::vector<std::unique_ptr<Connection>> closing;  // closed outside the lock
      std::lock_guard lock(park_mutex_);
      if (parker_stop_) return;
      for (int i = 0; i < n; ++i) {
        auto it = parked_.find(events[static_cast<std::size_t>(i)].data.fd);
        if (it == parked_.end()) continue;
        epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, it->first, nullptr);
        auto shared = std::make_shared<std::unique_ptr<Connection>>(std::move(it->second));
        parked_.erase(it);
        Pool* pool = pool_.load();
        if (pool == nullptr || !pool->push([this, shared] { serve(std::move(*shared)); })) {
          closing.push_back(std::move(*shared));  // shutting down
        }
      }
      // Idle longer than the keep-alive timeout: closed, as httplib would.
      const auto cutoff = Clock::now() - std::chrono::seconds(keep_alive_timeout_sec_);
      for (auto it = parked_.begin(); it != parked_.end();) {
        if (it->second->last_active <= cutoff) {
          epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, it->first, nullptr);
          closing.push_back(std::move(it->second));
          it = parked_.erase(it);
        } else {
          ++it;
        }
      }
    }
  }

  void close_parked() {
    std::unordered_map<int, std::unique_ptr<Connection>> closing;
    {
      std::lock_guard lock(park_mutex_);
      for (auto& [fd, conn] : parked_) {
        if (epoll_fd_ >= 0) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
      }
      closing.swap(parked_);
    }
  }

  bool stopping() const { return svr_sock_ == INVALID_SOCKET; }
  std::chrono::milliseconds linger_slice() const {
    return std::min(linger_, std::chrono::milliseconds(50));
  }
  int read_timeout_ms() const { return static_cast<int>(read_timeout_sec_ * 1000 + read_timeout_usec_ / 1000); }
  int write_timeout_ms() const { return static_cast<int>(write_timeout_sec_ * 1000 + write_timeout_usec_ / 1000); }

  std::size_t threads_;
  std::chrono::milliseconds linger_;
  std::atomic<Pool*> pool_{nullptr};
  int epoll_fd_ = -1;
  std::mutex park_mutex_;
  bool parker_stop_ = false;
  std::unordered_map<int, std::unique_ptr<Connection>> parked_;
  std::thread parker_;
};

}  // namespace cwc::gateway
