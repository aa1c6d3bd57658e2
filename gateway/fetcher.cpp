#include "fetcher.h"

#include <httplib.h>

#include <chrono>

namespace cwc::gateway {
namespace {

using Clock = std::chrono::steady_clock;

// "https://host:port/path?q" → {"https://host:port", "/path?q"}; empty origin when malformed.
std::pair<std::string, std::string> split_url(const std::string& url) {
  const std::size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return {};
  const std::string scheme = url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") return {};
  const std::size_t path_at = url.find('/', scheme_end + 3);
  if (path_at == scheme_end + 3) return {};
  if (path_at == std::string::npos) return {url, "/"};
  return {url.substr(0, path_at), url.substr(path_at)};
}

std::string describe(httplib::Error error) {
  switch (error) {
    case httplib::Error::Connection: return "could not connect";
    case httplib::Error::SSLConnection: return "TLS handshake failed";
    case httplib::Error::SSLServerVerification: return "TLS certificate verification failed";
    case httplib::Error::Read: return "connection closed while reading the answer";
    case httplib::Error::Write: return "connection closed while sending the request";
    case httplib::Error::ExceedRedirectCount: return "too many redirects";
    case httplib::Error::Canceled: return "download aborted";
    default: return "HTTP error " + httplib::to_string(error);
  }
}

}  // namespace

FetchResult perform_fetch(const FetchJob& job, const std::function<bool()>& stopping) {
  FetchResult result;
  const auto [origin, target] = split_url(job.url);
  if (origin.empty()) {
    result.error = "not an http(s) url";
    return result;
  }
  httplib::Client client(origin);
  if (!client.is_valid()) {
    result.error = "unusable url";
    return result;
  }
  const auto timeout = std::chrono::milliseconds(job.timeout_ms ? job.timeout_ms : 30000);
  const auto deadline = Clock::now() + timeout;
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(timeout).count();
  client.set_connection_timeout(std::min<long>(seconds, 10), 0);
  client.set_read_timeout(std::max<long>(1, seconds), 0);
  client.set_write_timeout(std::max<long>(1, seconds), 0);
  client.set_follow_location(true);  // WeCom's media urls may redirect to a CDN

  bool too_large = false;
  bool timed_out = false;
  bool aborted = false;
  std::string body;
  auto receive = [&](const char* data, std::size_t len) {
    if (stopping && stopping()) return !(aborted = true);
    if (Clock::now() > deadline) return !(timed_out = true);
    if (body.size() + len > job.max_response_bytes) return !(too_large = true);
    body.append(data, len);
    return true;
  };
  httplib::Result response{nullptr, httplib::Error::Unknown};
  if (job.method == "POST") {
    response = client.Post(target, job.body, job.content_type.empty() ? "application/json" : job.content_type);
    if (response) body = response->body.substr(0, job.max_response_bytes);
  } else {
    response = client.Get(target, httplib::Headers{}, [](const httplib::Response&) { return true; }, receive);
  }
  if (too_large) {
    result.outcome = FetchResult::Outcome::TooLarge;
    result.error = "more than " + std::to_string(job.max_response_bytes) + " bytes";
    return result;
  }
  if (timed_out || (!response && response.error() == httplib::Error::Read && Clock::now() > deadline)) {
    result.outcome = FetchResult::Outcome::Timeout;
    result.error = "no complete answer within " + std::to_string(job.timeout_ms) + " ms";
    return result;
  }
  if (aborted) {
    result.error = "gateway shutting down";
    return result;
  }
  if (!response) {
    result.error = describe(response.error());
    return result;
  }
  result.outcome = FetchResult::Outcome::Ok;
  result.http_status = response->status;
  result.body = std::move(body);
  return result;
}

Fetcher::Fetcher(std::size_t workers, std::size_t max_queued, Completion on_done)
    : on_done_(std::move(on_done)), max_queued_(max_queued) {
  for (std::size_t i = 0; i < workers; ++i) workers_.emplace_back([this] { work(); });
}

Fetcher::~Fetcher() { stop(); }

bool Fetcher::submit(FetchJob job) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || queue_.size() >= max_queued_) return false;
    queue_.push_back(std::move(job));
  }
  wake_.notify_one();
  return true;
}

void Fetcher::stop() {
  std::deque<FetchJob> dropped;
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && workers_.empty()) return;
    stopping_ = true;
    dropped.swap(queue_);
  }
  wake_.notify_all();
  for (auto& worker : workers_) {
    if (worker.joinable()) worker.join();
  }
  workers_.clear();
  FetchResult shutting_down;
  shutting_down.error = "gateway shutting down";
  for (const auto& job : dropped) on_done_(job.id, shutting_down);
}

void Fetcher::work() {
  for (;;) {
    FetchJob job;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;  // queued jobs are completed by stop()
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    const FetchResult result = perform_fetch(job, [this] {
      std::lock_guard lock(mutex_);
      return stopping_;
    });
    on_done_(job.id, result);
  }
}

}  // namespace cwc::gateway
