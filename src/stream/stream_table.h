// The in-memory table of streamed replies. WeCom pulls an answer by refreshing a stream id
// about once a second; the agent pushes into the same entry from any thread. One entry per
// (account, msgid): a retried msgid finds its stream instead of starting a second agent run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace cwc::stream {

// WeCom's limit for stream.content, in bytes of UTF-8.
inline constexpr std::size_t kMaxContentBytes = 20480;

// The longest prefix of `text` of at most `max_bytes` bytes that does not end inside a UTF-8
// sequence. (Invalid bytes are treated as single units, so the result always makes progress.)
std::size_t utf8_safe_prefix_length(std::string_view text, std::size_t max_bytes);

enum class PushMode { Append, Replace };
enum class FinishKind { Done, Failed };
enum class UpdateResult { Ok, NotFound, Closed };

struct StreamView {
  std::string id;
  std::string content;  // at most kMaxContentBytes, never a cut UTF-8 sequence
  bool finish = false;
};

struct OpenResult {
  std::string stream_id;
  bool created = false;  // false: the msgid was seen before (a WeCom retry)
};

// Something the table noticed during a sweep, for the log.
struct SweepNotice {
  enum class Kind { RefreshMissing, Expired, OverflowPending } kind;
  std::string account_id;
  std::string stream_id;
  std::size_t bytes = 0;   // OverflowPending: bytes beyond the cap
};

class StreamTable {
 public:
  using IdGenerator = std::function<std::string()>;

  StreamTable(std::size_t max_open, IdGenerator make_id)
      : max_open_(max_open), make_id_(std::move(make_id)) {}

  // The stream for (account, msgid): existing, or new with an unguessable id. nullopt when the
  // table is full of unfinished streams (the caller answers 503 so WeCom retries later).
  std::optional<OpenResult> open(std::string_view account_id, std::string_view msgid,
                                 std::int64_t now_ms, std::int64_t ttl_ms,
                                 std::int64_t refresh_warn_ms);

  // What to answer now: the first reply (is_refresh=false) or a WeCom refresh (true).
  // nullopt for an unknown, expired or other account's stream.
  std::optional<StreamView> view(std::string_view account_id, std::string_view stream_id,
                                 bool is_refresh, std::int64_t now_ms);

  UpdateResult push(std::string_view stream_id, std::string_view text, PushMode mode);
  UpdateResult finish(std::string_view stream_id, FinishKind kind, std::string_view text);

  // Drops expired entries (and their msgid records) and reports streams whose first reply went
  // out but which never got a refresh.
  std::vector<SweepNotice> sweep(std::int64_t now_ms);

  // The part of a finished answer beyond kMaxContentBytes (kept, never dropped).
  std::optional<std::string> overflow(std::string_view stream_id) const;

  std::size_t size() const;
  std::size_t open_count(std::string_view account_id) const;

 private:
  struct Entry {
    std::string id;
    std::string account_id;
    std::string msgid_key;
    std::string content;
    bool finished = false;
    bool failed = false;
    bool first_reply_sent = false;
    bool first_reply_final = false;
    bool warned_no_refresh = false;
    bool overflow_reported = false;
    std::int64_t created_ms = 0;
    std::int64_t expires_ms = 0;
    std::int64_t first_reply_ms = 0;
    std::int64_t refresh_warn_ms = 0;
    std::uint64_t refreshes = 0;
  };

  static std::string msgid_key(std::string_view account_id, std::string_view msgid);
  static StreamView make_view(const Entry& entry);
  void erase_locked(std::unordered_map<std::string, Entry>::iterator it);
  bool make_room_locked(std::int64_t now_ms);

  const std::size_t max_open_;
  const IdGenerator make_id_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;            // stream id → entry
  std::unordered_map<std::string, std::string> by_msgid_;     // account\x1f msgid → stream id
};

}  // namespace cwc::stream
