// What the core needs from its host, as a C++ interface. The ABI layer adapts the C callback
// table to it; unit tests implement it directly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"

namespace cwc::core {

enum class LogLevel { Trace, Debug, Info, Warn, Error };

enum class PeerKind { Direct, Group };

// One user message for the agent router. Views are valid only during Host::dispatch.
struct InboundMessage {
  std::string_view account_id;
  PeerKind peer_kind = PeerKind::Direct;
  std::string_view target;      // wecom:<userid> | wecom:group:<chatid>
  std::string_view sender_id;
  std::string_view chat_id;
  std::string_view message_id;
  std::string_view msgtype;
  std::string_view text;
  std::string_view quote_text;
  std::string_view stream_id;
  std::string_view response_url;
  std::string_view aibot_id;
  std::string_view media_json;
};

// An outbound HTTP request the core asks the host to perform (media download, response_url).
struct FetchRequest {
  std::uint64_t id = 0;
  std::string_view account_id;
  std::string_view method;  // "GET" | "POST"
  std::string_view url;
  std::string_view content_type;
  std::string_view body;
  std::uint64_t max_response_bytes = 0;
  std::uint32_t timeout_ms = 0;
};

enum class FetchOutcome { Ok, Failed, Timeout, TooLarge };

// A WeCom event that is not a user message, for the host (template_card_event, feedback_event).
struct Event {
  std::string_view account_id;
  std::string_view event_type;
  std::string_view sender_id;
  std::string_view chat_id;
  std::string_view message_id;
  std::string_view event_json;
};

class Host {
 public:
  virtual ~Host() = default;
  virtual void log(LogLevel level, std::string_view account_id, std::string_view line) = 0;
  // Queue the message for the agent; false when the host refused it (the user is told).
  virtual bool dispatch(const InboundMessage& message) = 0;
  virtual std::int64_t now_ms() = 0;
  virtual bool random(std::uint8_t* out, std::size_t len) = 0;
  // Small key/value store for pairing and allow-from lists. nullopt: the key is absent; an error:
  // the store could not be read (then nothing may be written back over what might be there).
  virtual Result<std::optional<std::string>> store_get(std::string_view ns, std::string_view key) = 0;
  virtual bool store_put(std::string_view ns, std::string_view key, std::string_view value) = 0;

  // Outbound HTTP (ABI 1.1, optional). can_fetch() false: the host has no HTTP client.
  // fetch() starts the request and returns at once; the host later reports the result through
  // Instance::fetch_done (exactly once, any thread). false: not started.
  virtual bool can_fetch() const { return false; }
  virtual bool fetch(const FetchRequest& /*request*/) { return false; }
  // A non-message event for the host (ABI 1.1, optional).
  virtual void event(const Event& /*event*/) {}
};

}  // namespace cwc::core
