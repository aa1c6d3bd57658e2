#include "agents.h"

#include <fstream>
#include <sstream>

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <thread>

namespace cwc::gateway {

using Clock = std::chrono::steady_clock;

// Ends one request early: when its deadline passes, or when cancel() asks. cpp-httplib's
// Client::stop() only reaches a socket that is already connected and marked in flight; called
// before that (a cancel() or a deadline racing with the connect) it does nothing, and the request
// would then run its full course. So once triggered, the watchdog keeps calling stop() until
// send() has returned (finished()).
class RequestWatchdog {
 public:
  RequestWatchdog(httplib::Client& client, Clock::time_point deadline)
      : client_(client), deadline_(deadline), thread_([this] { watch(); }) {}
  ~RequestWatchdog() {
    finished();
    thread_.join();
  }
  RequestWatchdog(const RequestWatchdog&) = delete;
  RequestWatchdog& operator=(const RequestWatchdog&) = delete;

  void abort() {
    std::lock_guard lock(mutex_);
    aborted_ = true;
    cv_.notify_all();
  }
  void finished() {
    std::lock_guard lock(mutex_);
    if (!finished_ && Clock::now() >= deadline_) expired_ = true;  // the watch thread may not have woken yet
    finished_ = true;
    cv_.notify_all();
  }
  bool aborted() const {
    std::lock_guard lock(mutex_);
    return aborted_;
  }
  // True once the deadline passed (the content receiver also checks it, so a model that keeps
  // sending stops being read at the deadline even between two stop() calls).
  bool expired() const {
    std::lock_guard lock(mutex_);
    return expired_ || (!finished_ && Clock::now() >= deadline_);
  }

 private:
  void watch() {
    std::unique_lock lock(mutex_);
    if (!cv_.wait_until(lock, deadline_, [this] { return finished_ || aborted_; })) expired_ = true;
    while (!finished_) {
      lock.unlock();
      client_.stop();  // may block while the client connects (bounded by the connection timeout)
      lock.lock();
      cv_.wait_for(lock, std::chrono::milliseconds(20), [this] { return finished_; });
    }
  }

  httplib::Client& client_;
  const Clock::time_point deadline_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool finished_ = false;
  bool aborted_ = false;
  bool expired_ = false;
  std::thread thread_;  // last: started once everything above is initialised
};

namespace {

using nlohmann::json;

constexpr const char* kShutdownText = "The gateway is shutting down; please send your message again.";

// "[image image/png 1234 bytes]" per item the plugin downloaded ("[image]" for a bare url).
std::string describe_media(const Job& job) {
  auto items = json::parse(job.media_json.empty() ? "[]" : job.media_json, nullptr, false);
  std::string out;
  if (items.is_array()) {
    for (const auto& item : items) {
      if (!item.is_object()) continue;
      out += "[" + item.value("kind", std::string("media"));
      if (item.contains("mime")) out += " " + item.value("mime", std::string()) + " " + std::to_string(item.value("bytes", 0LL)) + " bytes";
      out += "]";
    }
  }
  return out;
}

// The echo agent sends received images back (msg_item), like it echoes text.
void echo_images(const Job& job, ReplySink& sink) {
  auto items = json::parse(job.media_json.empty() ? "[]" : job.media_json, nullptr, false);
  if (!items.is_array()) return;
  for (const auto& item : items) {
    if (!item.is_object() || item.value("kind", std::string()) != "image" || !item.contains("path")) continue;
    std::ifstream in(item.value("path", std::string()), std::ios::binary);
    std::ostringstream bytes_stream;
    bytes_stream << in.rdbuf();
    const std::string bytes = bytes_stream.str();
    std::string error;
    if (!sink.attach_image(bytes, &error)) spdlog::debug("echo agent: image not echoed: {}", error);
  }
}

}  // namespace

void EchoAgent::run(const Job& job, ReplySink& sink) {
  spdlog::debug("echo agent: run msgid={} stream={}", job.message_id, job.stream_id);
  if (job.text.rfind("/fail", 0) == 0) {
    if (!sink.wait_ms(settings_.delay_ms)) return sink.fail("The gateway is shutting down; please send your message again.");
    sink.fail("echo agent failed on purpose");
    return;
  }
  std::string text = job.text;
  const std::string media = describe_media(job);
  if (!media.empty()) text = text.empty() ? media : text + " " + media;
  sink.push("echo: ");
  if (!sink.wait_ms(settings_.delay_ms)) return sink.fail("The gateway is shutting down; please send your message again.");
  sink.push(text);
  echo_images(job, sink);
  sink.done();
}

std::vector<std::string> SseParser::feed(std::string_view chunk) {
  std::vector<std::string> events;
  buffer_.append(chunk);
  std::size_t start = 0;
  while (true) {
    const std::size_t nl = buffer_.find('\n', start);
    if (nl == std::string::npos) break;
    std::string_view line(buffer_.data() + start, nl - start);
    start = nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) {  // blank line: dispatch the event
      // An empty data buffer is not an event (SSE spec); a bare "data:" keep-alive must not
      // reach the JSON decoder.
      if (has_data_ && !data_.empty()) events.push_back(std::move(data_));
      data_.clear();
      has_data_ = false;
      continue;
    }
    if (line.front() == ':') continue;  // comment / keep-alive
    if (line.rfind("data:", 0) == 0) {
      std::string_view value = line.substr(5);
      if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      if (has_data_) data_ += '\n';
      data_.append(value);
      has_data_ = true;
    }
    // event:, id:, retry: carry nothing chat completions need.
  }
  buffer_.erase(0, start);
  return events;
}

std::string extract_delta_content(const std::string& payload, std::string* error) {
  auto doc = json::parse(payload, nullptr, false);
  if (doc.is_discarded()) {
    if (error) *error = "malformed SSE payload from the model endpoint";
    return {};
  }
  if (!doc.is_object()) return {};
  if (auto e = doc.find("error"); e != doc.end() && !e->is_null()) {
    if (error) {
      std::string message;
      if (e->is_object()) {
        if (auto m = e->find("message"); m != e->end() && m->is_string()) message = m->get<std::string>();
      } else if (e->is_string()) {
        message = e->get<std::string>();
      }
      if (message.empty()) message = "error event " + e->dump();
      *error = message.substr(0, 300);
    }
    return {};
  }
  auto choices = doc.find("choices");
  if (choices == doc.end() || !choices->is_array() || choices->empty()) return {};
  const auto& first = (*choices)[0];
  auto delta = first.find("delta");
  if (delta == first.end() || !delta->is_object()) return {};
  // Only the final answer reaches the user: reasoning_content / thinking fields are skipped.
  auto content = delta->find("content");
  if (content == delta->end() || !content->is_string()) return {};
  return content->get<std::string>();
}

OpenAiAgent::OpenAiAgent(OpenAiSettings settings) : settings_(std::move(settings)) {
  api_key_ = settings_.api_key;
  if (api_key_.empty() && !settings_.api_key_env.empty()) {
    if (const char* env = std::getenv(settings_.api_key_env.c_str())) api_key_ = env;
  }
  while (!settings_.base_url.empty() && settings_.base_url.back() == '/') settings_.base_url.pop_back();
}

void OpenAiAgent::cancel() {
  std::lock_guard lock(active_mutex_);
  cancelled_ = true;
  for (auto* watchdog : active_) watchdog->abort();
}

std::string OpenAiAgent::timeout_text(int seconds, bool partial) {
  return std::string("\u26a0\ufe0f The model did not ") + (partial ? "finish its answer" : "answer") + " in " +
         std::to_string(seconds) + " s; please try again.";
}

void OpenAiAgent::run(const Job& job, ReplySink& sink) {
  const std::size_t scheme = settings_.base_url.find("://");
  const std::size_t path_at = settings_.base_url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  const std::string origin = settings_.base_url.substr(0, path_at);
  const std::string prefix = path_at == std::string::npos ? "" : settings_.base_url.substr(path_at);

  json messages = json::array();
  if (!settings_.system_prompt.empty()) messages.push_back({{"role", "system"}, {"content", settings_.system_prompt}});
  {
    std::lock_guard lock(history_mutex_);
    for (const auto& turn : history_[job.session_key()]) messages.push_back({{"role", turn.role}, {"content", turn.content}});
  }
  std::string user_text = job.text;
  if (!job.quote_text.empty()) user_text = "> " + job.quote_text + "\n\n" + user_text;
  if (user_text.empty()) user_text = "[" + job.msgtype + "]";
  messages.push_back({{"role", "user"}, {"content", user_text}});
  const json body = {{"model", settings_.model}, {"stream", true}, {"messages", messages}};

  // The deadline covers the whole answer; it starts before the connect.
  const auto deadline = Clock::now() + std::chrono::seconds(settings_.timeout_seconds);
  httplib::Client client(origin);
  client.set_connection_timeout(std::min(10, settings_.timeout_seconds), 0);
  client.set_read_timeout(settings_.timeout_seconds, 0);
  RequestWatchdog watchdog(client, deadline);  // destroyed (joined) before the client
  {
    std::lock_guard lock(active_mutex_);
    if (cancelled_) return sink.fail(kShutdownText);
    active_.insert(&watchdog);
  }
  struct Unregister {
    OpenAiAgent& agent;
    RequestWatchdog* watchdog;
    ~Unregister() {
      std::lock_guard lock(agent.active_mutex_);
      agent.active_.erase(watchdog);
    }
  } unregister{*this, &watchdog};
  client.set_write_timeout(10, 0);
  if (!api_key_.empty()) client.set_bearer_token_auth(api_key_);

  SseParser parser;
  std::string answer;
  std::string stream_error;
  int status = 0;
  std::string error_body;
  bool done = false;
  httplib::Request request;
  request.method = "POST";
  request.path = prefix + "/chat/completions";
  request.headers = {{"Accept", "text/event-stream"}};
  request.body = body.dump();
  request.set_header("Content-Type", "application/json");
  request.response_handler = [&](const httplib::Response& response) {
    status = response.status;
    return true;
  };
  request.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
    if (sink.cancelled() || watchdog.aborted() || watchdog.expired()) return false;
    if (status != 200) {
      error_body.append(data, std::min<std::size_t>(len, 512 - std::min<std::size_t>(512, error_body.size())));
      return true;
    }
    for (const auto& payload : parser.feed(std::string_view(data, len))) {
      if (payload == "[DONE]") {
        done = true;
        continue;
      }
      std::string delta = extract_delta_content(payload, &stream_error);
      if (!stream_error.empty()) return false;
      if (!delta.empty()) {
        answer += delta;
        sink.push(delta);
      }
    }
    return true;
  };
  auto result = client.send(request);
  watchdog.finished();
  // An answer that was complete ([DONE] read) is kept even if shutdown began meanwhile.
  if (!done && (sink.cancelled() || watchdog.aborted())) return sink.fail(kShutdownText);
  if (watchdog.expired() && !done) {
    spdlog::error("openai agent: no complete answer within {} s for {} (msgid {}; {} bytes streamed)",
                  settings_.timeout_seconds, job.target, job.message_id, answer.size());
    return sink.fail(timeout_text(settings_.timeout_seconds, !answer.empty()));
  }
  std::string failure;
  if (!stream_error.empty()) {
    failure = stream_error;
  } else if (!result && status == 0) {
    failure = "cannot reach " + origin + " (" + httplib::to_string(result.error()) + ")";
  } else if (status != 200) {
    failure = "HTTP " + std::to_string(status);
    auto err = json::parse(error_body, nullptr, false);
    if (err.is_object() && err.contains("error") && err["error"].is_object()) {
      failure += ": " + err["error"].value("message", std::string());
    }
  } else if (!result) {
    failure = "the stream broke off (" + httplib::to_string(result.error()) + ")";
  } else if (!done && answer.empty()) {
    failure = "the model returned no answer";
  }
  if (!failure.empty()) {
    // Readable for the WeCom user; the answer streamed so far stays above it.
    spdlog::error("openai agent: {} for {} (msgid {})", failure, job.target, job.message_id);
    sink.fail("The model endpoint failed: " + failure);
    return;
  }
  {
    std::lock_guard lock(history_mutex_);
    auto& turns = history_[job.session_key()];
    turns.push_back({"user", user_text});
    turns.push_back({"assistant", answer});
    while (static_cast<int>(turns.size()) > settings_.max_history) turns.erase(turns.begin());
  }
  sink.done();
}

}  // namespace cwc::gateway
