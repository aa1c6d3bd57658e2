// A core::Host for unit tests: records logs and dispatches, with a controllable clock and
// deterministic randomness.
#pragma once

#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "core/host.h"

namespace cwc::testing {

struct DispatchedMessage {
  std::string account_id, target, sender_id, chat_id, message_id, msgtype, text, quote_text, stream_id,
      response_url, media_json;
  core::PeerKind peer_kind;
};

class FakeHost : public core::Host {
 public:
  void log(core::LogLevel level, std::string_view account_id, std::string_view line) override {
    std::lock_guard lock(mutex);
    logs.push_back({level, std::string(account_id), std::string(line)});
  }
  bool dispatch(const core::InboundMessage& m) override {
    std::lock_guard lock(mutex);
    dispatched.push_back({std::string(m.account_id), std::string(m.target), std::string(m.sender_id),
                          std::string(m.chat_id), std::string(m.message_id), std::string(m.msgtype),
                          std::string(m.text), std::string(m.quote_text), std::string(m.stream_id),
                          std::string(m.response_url), std::string(m.media_json), m.peer_kind});
    return accept_dispatch;
  }
  std::int64_t now_ms() override { return clock_ms.load(); }
  bool random(std::uint8_t* out, std::size_t len) override {
    for (std::size_t i = 0; i < len; ++i) out[i] = static_cast<std::uint8_t>(++counter);
    return true;
  }
  Result<std::optional<std::string>> store_get(std::string_view ns, std::string_view key) override {
    std::lock_guard lock(mutex);
    if (fail_store_reads) return make_error(ErrorKind::Internal, "store read failed (test)");
    auto it = store.find(std::string(ns) + "/" + std::string(key));
    if (it == store.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }
  bool store_put(std::string_view ns, std::string_view key, std::string_view value) override {
    std::lock_guard lock(mutex);
    store[std::string(ns) + "/" + std::string(key)] = std::string(value);
    return true;
  }

  // Outbound HTTP (ABI 1.1): off unless a test turns it on; requests are recorded and answered
  // by the test through Instance::fetch_done.
  bool can_fetch() const override { return fetch_enabled; }
  bool fetch(const core::FetchRequest& r) override {
    std::lock_guard lock(mutex);
    fetches.push_back({r.id, std::string(r.account_id), std::string(r.method), std::string(r.url),
                       std::string(r.content_type), std::string(r.body), r.max_response_bytes, r.timeout_ms});
    return start_fetch;
  }
  void event(const core::Event& e) override {
    std::lock_guard lock(mutex);
    events.push_back({std::string(e.account_id), std::string(e.event_type), std::string(e.sender_id),
                      std::string(e.chat_id), std::string(e.message_id), std::string(e.event_json)});
  }

  struct FetchCall {
    std::uint64_t id;
    std::string account_id, method, url, content_type, body;
    std::uint64_t max_response_bytes;
    std::uint32_t timeout_ms;
  };
  struct EventCall {
    std::string account_id, event_type, sender_id, chat_id, message_id, event_json;
  };

  struct LogLine {
    core::LogLevel level;
    std::string account_id;
    std::string line;
  };

  // Lines at or above `level` that contain `needle`.
  std::size_t count_logs(std::string_view needle, core::LogLevel level = core::LogLevel::Trace) {
    std::lock_guard lock(mutex);
    std::size_t n = 0;
    for (const auto& l : logs) n += (l.level >= level && l.line.find(needle) != std::string::npos);
    return n;
  }

  std::mutex mutex;
  std::vector<LogLine> logs;
  std::vector<DispatchedMessage> dispatched;
  std::map<std::string, std::string> store;
  std::atomic<std::int64_t> clock_ms{1732500000000};
  std::uint8_t counter = 0;
  bool accept_dispatch = true;
  bool fetch_enabled = false;
  bool fail_store_reads = false;
  bool start_fetch = true;
  std::vector<FetchCall> fetches;
  std::vector<EventCall> events;
};

}  // namespace cwc::testing
