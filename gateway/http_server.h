// The gateway's HTTP serving model on top of cpp-httplib 0.11: httplib still parses requests,
// routes them and writes responses (Server::process_request); this class replaces only its
// per-connection socket loop (the virtual process_and_close_socket, as httplib's own SSLServer
// does). Measured with bench/http_refresh.sh and bench/compare_node.sh (docs/performance.md):
//  - Syscalls. httplib 0.11's SocketStream polls before every recv and twice before every send,
//    asks getpeername/getsockname on every request and writes headers and body separately:
//    ~12 syscalls and two TCP segments per request. Here a connection keeps one buffered stream:
//    one recv per request, addresses read once per connection, the whole response in one send.
//  - Sleeping per request. With a thread per connection, every request costs a context switch
//    (the thread sleeps in recv until the peer's next request), and on a VM that was a quarter
//    of the gateway's CPU. Here connections between requests sit in one epoll set, and
//    event-loop threads (three per core, kLoopsPerCore) take the ready ones: a request that has
//    fully arrived is answered on the loop thread itself (its parse, routing and plugin call are
//    a few µs), so a busy loop goes from one ready connection to the next without sleeping.
//  - Anything that could block a loop goes to the `threads` workers instead, which serve it the
//    blocking way (httplib reading from the socket with its timeouts) and then put the connection
//    back: a request not yet fully arrived, `Expect: 100-continue`, chunked bodies, bodies over
//    kInlineBodyBytes, and a response the peer is too slow to take in one send. The workers
//    bound such requests in progress, never open connections.
// Timeouts keep httplib's meaning: keep-alive idle (set_keep_alive_timeout), per-read and
// per-write (set_read_timeout / set_write_timeout), and keep_alive_max_count requests per
// connection. stop() ends lingering connections within one linger slice and idle ones at once.
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
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

namespace cwc::gateway {

class KeepAliveServer : public httplib::Server {
 public:
  // `threads`: workers for requests that may block (above); `linger`: how long such a worker
  // waits for the next request on its connection before handing it back to the event loops;
  // `loops`: event-loop threads (0: kLoopsPerCore per core).
  KeepAliveServer(std::size_t threads, std::chrono::milliseconds linger, std::size_t loops = 0)
      : threads_(std::max<std::size_t>(1, threads)), linger_(linger) {
    new_task_queue = [this] { return new Pool(*this, threads_); };
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    if (loops == 0) loops = kLoopsPerCore * std::max(1u, std::thread::hardware_concurrency());
    for (std::size_t i = 0; i < loops; ++i) loops_.emplace_back([this] { event_loop(); });
  }

  ~KeepAliveServer() override {
    loops_stop_.store(true);
    for (auto& loop : loops_) loop.join();
    close_idle();
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

  std::size_t loop_count() const { return loops_.size(); }

  // More loops than cores, measured (docs/performance.md, bench/http_refresh.sh on 2 cores
  // shared with wrk): answering a request wakes the peer that waits for it, and the woken
  // peer preempts the loop on its way back from send() (two thirds of the loops' context
  // switches were exactly that). With one loop per core, the ready connections wait for that
  // loop; with three per core another loop takes them: 0.56 -> 0.22 context switches and
  // ~52 -> ~40 µs of gateway CPU per request, +27 to +64 % requests/s over four alternating
  // rounds, p99 equal or lower. Four per core was as fast, six slower again. Idle loops only
  // sleep in epoll_wait.
  static constexpr std::size_t kLoopsPerCore = 3;

  // Requests answered on an event-loop thread and on a worker, for tests and the bench notes.
  std::uint64_t served_inline() const { return served_inline_.load(std::memory_order_relaxed); }
  std::uint64_t served_by_workers() const { return served_by_workers_.load(std::memory_order_relaxed); }
  // How often a connection became ready again while its loop was letting go of it (serve_ready).
  std::uint64_t ready_again_count() const { return ready_again_.load(std::memory_order_relaxed); }

 private:
  using Clock = std::chrono::steady_clock;

  // Requests answered on a loop thread have fully arrived and carry at most this much body.
  static constexpr std::size_t kInlineBodyBytes = 1024 * 1024;
  // Headers not complete within this many bytes go to a worker (httplib applies its limits).
  static constexpr std::size_t kInlineHeaderBytes = 64 * 1024;

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
      if (in_off_ < in_len_) return true;
      if (!may_block_) return false;
      pollfd p{fd_, POLLIN, 0};
      return ::poll(&p, 1, server_.read_timeout_ms()) > 0;
    }
    bool is_writable() const override {
      pollfd p{fd_, POLLOUT, 0};
      return ::poll(&p, 1, 0) > 0 && !(p.revents & (POLLERR | POLLHUP));
    }

    ssize_t read(char* ptr, std::size_t size) override {
      // httplib reads the request line and headers one byte per call.
      if (size == 1 && in_off_ < in_len_) {
        *ptr = in_[in_off_++];
        return 1;
      }
      if (in_off_ >= in_len_) {
        // On a loop thread the whole request was checked to be here: wanting more means the
        // framing check and httplib disagree, and failing the request beats stalling a loop.
        if (!may_block_) return -1;
        // About to wait for the peer: whatever we owe it (e.g. "100 Continue") goes first.
        if (!flush()) return -1;
        const auto deadline = Clock::now() + std::chrono::milliseconds(server_.read_timeout_ms());
        if (fill(deadline, /*no_wait=*/false, /*between_requests=*/false) <= 0) return -1;
      }
      const std::size_t n = std::min(size, in_len_ - in_off_);
      std::memcpy(ptr, in_.get() + in_off_, n);
      in_off_ += n;
      return static_cast<ssize_t>(n);
    }

    ssize_t write(const char* ptr, std::size_t size) override {
      out_.append(ptr, size);
      if (may_block_ && out_.size() >= kFlushBytes && !flush()) return -1;
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

    enum class Sent { All, WouldBlock, Failed };
    // What the socket takes now, without waiting; the rest stays in `out_` for flush().
    Sent flush_now() {
      std::size_t sent = 0;
      Sent result = Sent::All;
      while (sent < out_.size()) {
        const ssize_t n = ::send(fd_, out_.data() + sent, out_.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
          sent += static_cast<std::size_t>(n);
        } else if (n < 0 && errno == EINTR) {
          continue;
        } else {
          result = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? Sent::WouldBlock : Sent::Failed;
          break;
        }
      }
      if (result == Sent::Failed) out_.clear();
      else out_.erase(0, sent);
      return result;
    }

    bool has_input() const { return in_off_ < in_len_; }

    // Waits for the first byte of the next request: >0 there is input; 0 none before
    // `deadline` or the server is stopping; <0 the peer closed or failed. `no_wait`: only look.
    int wait_for_request(Clock::time_point deadline, bool no_wait) {
      if (has_input()) return 1;
      return fill(deadline, no_wait, /*between_requests=*/true);
    }

    enum class Framing { Complete, Incomplete, NotInline };
    // Whether the buffered input holds a whole request a loop thread may answer: headers ended,
    // no Expect or Transfer-Encoding, one plain Content-Length of at most kInlineBodyBytes, and
    // that many body bytes. Anything else is a worker's (httplib then reads and judges it).
    Framing framing() const {
      const std::string_view data(in_.get() + in_off_, in_len_ - in_off_);
      const std::size_t end = data.find("\r\n\r\n");
      if (end == std::string_view::npos) {
        return data.size() > kInlineHeaderBytes ? Framing::NotInline : Framing::Incomplete;
      }
      std::size_t content_length = 0;
      bool seen_length = false;
      for (std::size_t eol = data.find("\r\n"); eol < end;) {
        const std::size_t start = eol + 2;
        eol = data.find("\r\n", start);
        const std::string_view line = data.substr(start, eol - start);
        if (header_named(line, "content-length")) {
          if (seen_length || !parse_length(line.substr(sizeof("content-length")), content_length)) {
            return Framing::NotInline;
          }
          seen_length = true;
        } else if (header_named(line, "transfer-encoding") || header_named(line, "expect")) {
          return Framing::NotInline;
        }
      }
      if (content_length > kInlineBodyBytes) return Framing::NotInline;
      return data.size() - (end + 4) >= content_length ? Framing::Complete : Framing::Incomplete;
    }

    // On a loop thread nothing may wait: reads past the buffer fail, writes only collect.
    void set_may_block(bool may_block) { may_block_ = may_block; }

    std::size_t served = 0;            // requests answered on this connection
    bool close_after_flush = false;    // the last response is still being sent, then close
    Clock::time_point last_active = Clock::now();

   private:
    static constexpr std::size_t kReadBytes = 16 * 1024;
    static constexpr std::size_t kFlushBytes = 64 * 1024;

    // `line` starts with `lower_name` (ASCII case-insensitive) followed by ':'.
    static bool header_named(std::string_view line, std::string_view lower_name) {
      if (line.size() <= lower_name.size() || line[lower_name.size()] != ':') return false;
      for (std::size_t i = 0; i < lower_name.size(); ++i) {
        const char c = line[i];
        if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c) != lower_name[i]) return false;
      }
      return true;
    }
    // Optional blanks, 1..15 digits, optional blanks: anything else is httplib's to judge.
    static bool parse_length(std::string_view value, std::size_t& out) {
      auto blank = [](char c) { return c == ' ' || c == '\t'; };
      while (!value.empty() && blank(value.front())) value.remove_prefix(1);
      while (!value.empty() && blank(value.back())) value.remove_suffix(1);
      if (value.empty() || value.size() > 15) return false;
      out = 0;
      for (const char c : value) {
        if (c < '0' || c > '9') return false;
        out = out * 10 + static_cast<std::size_t>(c - '0');
      }
      return true;
    }

    // One recv into the read buffer (SO_RCVTIMEO makes it wake every linger slice). 1: data;
    // 0: nothing before `deadline` (or, between requests, the server is stopping; a request
    // already started keeps its full read timeout, as with httplib); -1: closed or failed.
    int fill(Clock::time_point deadline, bool no_wait, bool between_requests) {
      in_off_ = 0;
      in_len_ = 0;
      for (;;) {
        const ssize_t n = ::recv(fd_, in_.get(), kReadBytes, no_wait ? MSG_DONTWAIT : 0);
        if (n > 0) {
          in_len_ = static_cast<std::size_t>(n);
          return 1;
        }
        if (n == 0) return -1;  // orderly close by the peer
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
        if (no_wait || Clock::now() >= deadline || (between_requests && server_.stopping())) return 0;
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
    // Not a std::string: resizing one zero-fills 16 KiB before every recv (seen under perf).
    std::unique_ptr<char[]> in_{new char[kReadBytes]};
    std::size_t in_len_ = 0;
    std::size_t in_off_ = 0;
    std::string out_;
    std::string remote_ip_, local_ip_;
    int remote_port_ = 0, local_port_ = 0;
    bool may_block_ = true;
  };

  // Fixed worker threads for requests that may block. httplib's accept loop "enqueues" each
  // new connection: that only registers it with the event loops, so it runs at once.
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

    void enqueue(std::function<void()> fn) override { fn(); }
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
        // Under the connection table's lock: once this returns, no loop hands us work.
        std::lock_guard lock(server_.idle_mutex_);
        server_.pool_.store(nullptr);
      }
      {
        std::lock_guard lock(mutex_);
        shutdown_ = true;
      }
      cv_.notify_all();
      for (auto& t : workers_) t.join();
      server_.close_idle();
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

  // A connection between requests, in the epoll set. `busy`: a loop thread is serving it (its
  // entry then stays put and nobody else touches the connection until the loop is done).
  struct Idle {
    std::unique_ptr<Connection> conn;
    bool busy = false;
    bool ready_again = false;  // its event fired while busy (see serve_ready)
  };
  enum class Next { Wait, Worker, Close };

  bool process_and_close_socket(socket_t sock) override {
    park(std::make_unique<Connection>(sock, *this));
    return true;
  }

  // A worker's blocking service: requests on one connection until it closes, misbehaves,
  // reaches keep_alive_max_count, or goes quiet (then it goes back to the event loops).
  void serve(std::unique_ptr<Connection> conn) {
    if (!conn->flush() || conn->close_after_flush) return;  // what a loop could not send at once
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
      // Counted before the peer can see the answer: a response over kFlushBytes is already sent
      // from inside process_request (found by CI: a 2 MiB echo arrived before the count).
      served_by_workers_.fetch_add(1, std::memory_order_relaxed);
      const bool ok = process_request(*conn, close_connection, connection_closed, nullptr);
      ++conn->served;
      const bool sent = conn->flush();
      conn->last_active = Clock::now();
      if (!ok || !sent || connection_closed || close_connection) return;
    }
  }

  // A loop thread's service of a ready connection: every request that has fully arrived is
  // answered here; what could block goes to a worker.
  Next serve_inline(Connection& conn) {
    if (!conn.has_input()) {
      const int ready = conn.wait_for_request(Clock::now(), /*no_wait=*/true);
      if (ready < 0) return Next::Close;
      if (ready == 0) return Next::Wait;
    }
    while (conn.has_input()) {
      if (stopping()) return Next::Close;
      if (conn.framing() != Connection::Framing::Complete) return Next::Worker;
      const bool close_connection = conn.served + 1 >= keep_alive_max_count_;
      bool connection_closed = false;
      conn.set_may_block(false);
      const bool ok = process_request(conn, close_connection, connection_closed, nullptr);
      conn.set_may_block(true);
      ++conn.served;
      served_inline_.fetch_add(1, std::memory_order_relaxed);
      conn.last_active = Clock::now();
      const auto sent = conn.flush_now();
      if (sent == Connection::Sent::Failed || !ok) return Next::Close;
      const bool last = connection_closed || close_connection;
      if (sent == Connection::Sent::WouldBlock) {
        conn.close_after_flush = last;
        return Next::Worker;  // a slow reader: a worker waits for it, with the write timeout
      }
      if (last) return Next::Close;
    }
    return Next::Wait;
  }

  void park(std::unique_ptr<Connection> conn) {
    const int fd = conn->socket();
    std::lock_guard lock(idle_mutex_);
    if (loops_stop_.load() || epoll_fd_ < 0) return;  // conn closes here
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
    ev.data.fd = fd;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) return;
    idle_.insert_or_assign(fd, Idle{std::move(conn), false});
  }

  void event_loop() {
    std::array<epoll_event, 32> events{};
    while (!loops_stop_.load()) {
      const int n = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), 100);
      for (int i = 0; i < n; ++i) serve_ready(events[static_cast<std::size_t>(i)].data.fd);
      close_expired();
    }
  }

  void serve_ready(int fd) {
    Connection* conn = nullptr;
    {
      std::lock_guard lock(idle_mutex_);
      auto it = idle_.find(fd);
      if (it == idle_.end()) return;
      if (it->second.busy) {
        // Re-armed by the loop that serves it, and ready again before that loop let go: that
        // loop serves it once more (below) instead of this one.
        it->second.ready_again = true;
        return;
      }
      it->second.busy = true;
      conn = it->second.conn.get();
    }
    Next next = Next::Wait;
    for (;;) {
      next = serve_inline(*conn);
      if (next != Next::Wait || stopping() || loops_stop_.load()) break;
      // Re-armed outside the lock: this system call was most of the lock's hold time, and six
      // loops queued on it (0.3 futex calls per request). The connection is still busy, so
      // nobody else touches it; an event that fires before we let go sets ready_again.
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
      ev.data.fd = fd;
      if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev) != 0) {
        next = Next::Close;
        break;
      }
      std::lock_guard lock(idle_mutex_);
      auto it = idle_.find(fd);  // still there: a busy entry is never removed by anyone else
      if (!it->second.ready_again) {
        it->second.busy = false;
        return;
      }
      it->second.ready_again = false;  // its event came and went while we held it: serve again
      ready_again_.fetch_add(1, std::memory_order_relaxed);
    }
    std::unique_ptr<Connection> closing;  // closed outside the lock
    std::lock_guard lock(idle_mutex_);
    auto it = idle_.find(fd);  // still there: a busy entry is never removed by anyone else
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    auto owned = std::make_shared<std::unique_ptr<Connection>>(std::move(it->second.conn));
    idle_.erase(it);
    // Under the lock: Pool::shutdown clears pool_ under it too, so the pool is alive here.
    Pool* pool = pool_.load();
    if (next == Next::Worker && !stopping() && pool != nullptr &&
        pool->push([this, owned] { serve(std::move(*owned)); })) {
      return;
    }
    closing = std::move(*owned);
  }

  // Idle longer than the keep-alive timeout: closed, as httplib would. One loop sweeps at a time,
  // at most every 100 ms.
  void close_expired() {
    const auto now = Clock::now();
    auto due = next_sweep_.load();
    if (now.time_since_epoch().count() < due ||
        !next_sweep_.compare_exchange_strong(due, (now + std::chrono::milliseconds(100)).time_since_epoch().count())) {
      return;
    }
    const auto cutoff = now - std::chrono::seconds(keep_alive_timeout_sec_);
    std::vector<std::unique_ptr<Connection>> closing;
    std::lock_guard lock(idle_mutex_);
    for (auto it = idle_.begin(); it != idle_.end();) {
      if (!it->second.busy && it->second.conn->last_active <= cutoff) {
        epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, it->first, nullptr);
        closing.push_back(std::move(it->second.conn));
        it = idle_.erase(it);
      } else {
        ++it;
      }
    }
  }

  // Closes every idle connection; busy ones are closed by their loop when it sees stopping().
  void close_idle() {
    std::vector<std::unique_ptr<Connection>> closing;
    std::lock_guard lock(idle_mutex_);
    for (auto it = idle_.begin(); it != idle_.end();) {
      if (it->second.busy) {
        ++it;
        continue;
      }
      if (epoll_fd_ >= 0) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, it->first, nullptr);
      closing.push_back(std::move(it->second.conn));
      it = idle_.erase(it);
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
  std::atomic<bool> loops_stop_{false};
  std::atomic<Clock::rep> next_sweep_{0};
  std::atomic<std::uint64_t> served_inline_{0};
  std::atomic<std::uint64_t> served_by_workers_{0};
  std::atomic<std::uint64_t> ready_again_{0};
  std::mutex idle_mutex_;
  std::unordered_map<int, Idle> idle_;
  std::vector<std::thread> loops_;  // last: started once everything above exists
};

}  // namespace cwc::gateway
