// The in-memory table of streamed replies. WeCom pulls an answer by refreshing a stream id
// about once a second; the agent pushes into the same entry from any thread. One entry per
// (account, msgid): a retried msgid finds its stream instead of starting a second agent run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
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
enum class UpdateResult { Ok, NotFound, Closed, Full };  // Full: attach_image beyond kMaxReplyImages

// An image the agent attached to a stream: sent as a msg_item with the finishing reply.
struct ReplyImage {
  std::string base64;
  std::string md5_hex;
};

// WeCom's limits for msg_item images on a stream reply.
inline constexpr std::size_t kMaxReplyImages = 10;
inline constexpr std::size_t kMaxReplyImageBytes = 10 * 1024 * 1024;

struct StreamView {
  std::string id;
  std::string content;  // at most kMaxContentBytes, never a cut UTF-8 sequence
  bool finish = false;
  std::vector<ReplyImage> images;  // only on a finishing view
};

// Per-stream settings fixed when the stream opens.
struct StreamOptions {
  std::int64_t ttl_ms = 600'000;
  std::int64_t refresh_warn_ms = 5'000;
  // When the stream is handed over to response_url if the agent is still answering (WeCom stops
  // refreshing ~6 minutes after the user's message); 0 = never.
  std::int64_t handoff_after_ms = 0;
  std::string response_url;   // empty: nothing can be delivered after the stream
  std::string continued_note; // appended to the visible part when the rest follows elsewhere
};

// What could not be shown in the stream and must go out through response_url.
struct Remainder {
  std::string account_id;
  std::string stream_id;
  std::string response_url;  // may be empty (then the text is lost: the caller logs it)
  std::string text;
  bool interrupted = false;  // the agent never finished (stream expired)
};

struct OpenResult {
  std::string stream_id;
  bool created = false;  // false: the msgid was seen before (a WeCom retry)
};

// Something the table noticed during a sweep, for the log.
struct SweepNotice {
  enum class Kind { RefreshMissing, Expired, HandedOff } kind;
  std::string account_id;
  std::string stream_id;
  std::size_t bytes = 0;   // Expired: content never shown; HandedOff: bytes shown so far
};

struct SweepResult {
  std::vector<SweepNotice> notices;
  std::vector<Remainder> remainders;  // expired unfinished streams whose text was not all shown
  std::vector<std::string> closed;    // stream ids that ended without the agent finishing
};

class StreamTable {
 public:
  using IdGenerator = std::function<std::string()>;

  StreamTable(std::size_t max_open, IdGenerator make_id)
      : max_open_(max_open), make_id_(std::move(make_id)) {}

  // The stream for (account, msgid): existing, or new with an unguessable id. nullopt when the
  // table is full of unfinished streams (the caller answers 503 so WeCom retries later).
  std::optional<OpenResult> open(std::string_view account_id, std::string_view msgid,
                                 std::int64_t now_ms, const StreamOptions& options);
  std::optional<OpenResult> open(std::string_view account_id, std::string_view msgid, std::int64_t now_ms,
                                 std::int64_t ttl_ms, std::int64_t refresh_warn_ms) {
    StreamOptions options;
    options.ttl_ms = ttl_ms;
    options.refresh_warn_ms = refresh_warn_ms;
    return open(account_id, msgid, now_ms, options);
  }

  // What to answer now: the first reply (is_refresh=false) or a WeCom refresh (true).
  // nullopt for an unknown, expired or other account's stream.
  std::optional<StreamView> view(std::string_view account_id, std::string_view stream_id,
                                 bool is_refresh, std::int64_t now_ms);

  UpdateResult push(std::string_view stream_id, std::string_view text, PushMode mode);
  // On Ok, `remainder` (if given) receives the text that the stream cannot show — beyond
  // kMaxContentBytes, or produced after a handoff — for delivery through response_url.
  UpdateResult finish(std::string_view stream_id, FinishKind kind, std::string_view text,
                      std::optional<Remainder>* remainder = nullptr);
  UpdateResult attach_image(std::string_view stream_id, ReplyImage image);

  // Drops expired entries (and their msgid records), hands streams past their handoff time over
  // to response_url, and reports streams whose first reply went out but never got a refresh.
  SweepResult sweep(std::int64_t now_ms);

  // The part of the answer the stream does not show (beyond the cap, or after a handoff).
  std::optional<std::string> overflow(std::string_view stream_id) const;

  std::size_t size() const;
  std::size_t open_count(std::string_view account_id) const;

 private:
  struct Entry {
    std::string id;
    std::string account_id;
    std::string msgid_key;
    std::string content;
    std::string response_url;
    std::string continued_note;
    std::vector<ReplyImage> images;
    bool finished = false;
    bool failed = false;
    bool first_reply_sent = false;
    bool first_reply_final = false;
    bool warned_no_refresh = false;
    // Handed off: WeCom sees the stream finished with `shown` + the note; everything after
    // `shown_bytes` goes out through response_url once the agent finishes.
    bool handed_off = false;
    std::size_t shown_bytes = 0;
    std::int64_t created_ms = 0;
    std::int64_t expires_ms = 0;
    std::int64_t first_reply_ms = 0;
    std::int64_t refresh_warn_ms = 0;
    std::int64_t handoff_at_ms = 0;  // 0: never
    std::uint64_t refreshes = 0;
  };

  static std::string msgid_key(std::string_view account_id, std::string_view msgid);
  static StreamView make_view(const Entry& entry);
  // How many bytes of `entry.content` the stream shows when the rest continues elsewhere.
  static std::size_t visible_prefix(const Entry& entry);
  // Lets the table be searched with the caller's string_view: every refresh, push and finish
  // looks a stream up by id, and a std::string key made for it was an allocation each time.
  struct IdHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view id) const noexcept { return std::hash<std::string_view>{}(id); }
  };
  using EntryMap = std::unordered_map<std::string, Entry, IdHash, std::equal_to<>>;

  void erase_locked(EntryMap::iterator it);
  bool make_room_locked(std::int64_t now_ms);

  const std::size_t max_open_;
  const IdGenerator make_id_;
  mutable std::mutex mutex_;
  EntryMap entries_;                                          // stream id → entry
  std::unordered_map<std::string, std::string> by_msgid_;     // account\x1f msgid → stream id
  // Finished streams, oldest first: when the table is full, the first one is evicted in
  // O(log n) instead of scanning every entry for each new message.
  std::set<std::pair<std::int64_t, std::string>> finished_by_age_;
};

}  // namespace cwc::stream
