// The gateway's outbound HTTP for the plugin (ABI 1.1 callback_fetch): WeCom media downloads and
// response_url POSTs, on a small pool of worker threads so no webhook thread ever waits on the
// network. Each request ends in exactly one completion call.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace cwc::gateway {

struct FetchJob {
  std::uint64_t id = 0;
  std::string method;  // GET | POST
  std::string url;
  std::string content_type;
  std::string body;
  std::uint64_t max_response_bytes = 0;
  std::uint32_t timeout_ms = 30000;
};

struct FetchResult {
  enum class Outcome { Ok, Failed, Timeout, TooLarge } outcome = Outcome::Failed;
  int http_status = 0;
  std::string body;
  std::string error;  // for Failed: what went wrong (never the url: it may carry a one-time code)
};

// Performs one request synchronously (used by the workers; tests call it directly).
// `stopping` aborts a running download early (reported as Failed "gateway shutting down").
FetchResult perform_fetch(const FetchJob& job, const std::function<bool()>& stopping = {});

class Fetcher {
 public:
  using Completion = std::function<void(std::uint64_t id, const FetchResult& result)>;

  Fetcher(std::size_t workers, std::size_t max_queued, Completion on_done);
  ~Fetcher();  // stop()
  Fetcher(const Fetcher&) = delete;
  Fetcher& operator=(const Fetcher&) = delete;

  // Queues a request; false when the queue is full or the fetcher stopped (nothing is called).
  bool submit(FetchJob job);
  // Aborts running downloads, drops queued requests (completing them as Failed) and joins the
  // workers. After it returns the completion is never called again.
  void stop();

 private:
  void work();

  Completion on_done_;
  const std::size_t max_queued_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<FetchJob> queue_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace cwc::gateway
