// What the core needs from its host, as a C++ interface. The ABI layer adapts the C callback
// table to it; unit tests implement it directly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

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

class Host {
 public:
  virtual ~Host() = default;
  virtual void log(LogLevel level, std::string_view account_id, std::string_view line) = 0;
  // Queue the message for the agent; false when the host refused it (the user is told).
  virtual bool dispatch(const InboundMessage& message) = 0;
  virtual std::int64_t now_ms() = 0;
  virtual bool random(std::uint8_t* out, std::size_t len) = 0;
  // Small key/value store for pairing and allow-from lists.
  virtual std::optional<std::string> store_get(std::string_view ns, std::string_view key) = 0;
  virtual bool store_put(std::string_view ns, std::string_view key, std::string_view value) = 0;
};

}  // namespace cwc::core
