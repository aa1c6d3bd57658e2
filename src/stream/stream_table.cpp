#include "stream/stream_table.h"

#include <algorithm>

namespace cwc::stream {

std::size_t utf8_safe_prefix_length(std::string_view text, std::size_t max_bytes) {
  if (text.size() <= max_bytes) return text.size();
  std::size_t cut = max_bytes;
  // Step back over continuation bytes (10xxxxxx) to the start of the sequence at `cut`...
  std::size_t start = cut;
  while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80 && cut - start < 3) --start;
  const auto lead = static_cast<unsigned char>(text[start]);
  std::size_t seq_len = 1;
  if ((lead & 0xE0) == 0xC0) seq_len = 2;
  else if ((lead & 0xF0) == 0xE0) seq_len = 3;
  else if ((lead & 0xF8) == 0xF0) seq_len = 4;
  // ...and cut before it if the sequence would not fit whole.
  if (start + seq_len > max_bytes) return start;
  return cut;
}

std::string StreamTable::msgid_key(std::string_view account_id, std::string_view msgid) {
  std::string key(account_id);
  key += '\x1f';
  key += msgid;
  return key;
}

namespace {
// Bytes the "continued below" note takes, with the blank line before it.
std::size_t note_reserve(const std::string& note) { return note.empty() ? 0 : note.size() + 2; }
}  // namespace

std::size_t StreamTable::visible_prefix(const Entry& entry) {
  if (entry.handed_off) return entry.shown_bytes;
  if (entry.finished && entry.content.size() <= kMaxContentBytes) return entry.content.size();
  // Running, or finished beyond the cap: keep room for the note, so the visible text never
  // shrinks when the answer turns out to be long.
  const std::size_t reserve = std::min(note_reserve(entry.continued_note), kMaxContentBytes / 2);
  return utf8_safe_prefix_length(entry.content, kMaxContentBytes - reserve);
}

StreamView StreamTable::make_view(const Entry& entry) {
  StreamView view;
  view.id = entry.id;
  const std::size_t shown = visible_prefix(entry);
  view.content = entry.content.substr(0, shown);
  const bool continues = entry.handed_off || (entry.finished && shown < entry.content.size());
  view.finish = entry.finished || entry.handed_off;
  if (continues && !entry.continued_note.empty()) {
    if (!view.content.empty()) view.content += "\n\n";
    view.content += entry.continued_note;
    view.content.resize(utf8_safe_prefix_length(view.content, kMaxContentBytes));
  }
  if (view.finish && !entry.handed_off) view.images = entry.images;
  return view;
}

void StreamTable::erase_locked(EntryMap::iterator it) {
  if (it->second.finished) finished_by_age_.erase({it->second.created_ms, it->second.id});
  by_msgid_.erase(it->second.msgid_key);
  entries_.erase(it);
}

// Evicts the oldest finished stream. Unfinished ones are never evicted: their user would see
// an answer vanish mid-stream.
bool StreamTable::make_room_locked(std::int64_t now_ms) {
  if (!finished_by_age_.empty()) {
    erase_locked(entries_.find(finished_by_age_.begin()->second));
    return true;
  }
  // Only unfinished streams: none is evicted here, not even one past its TTL — the next sweep
  // (on_tick, ~1 s) delivers its unseen text and frees its user's lane; until then WeCom gets 503
  // and retries.
  (void)now_ms;
  return false;
}

std::optional<OpenResult> StreamTable::open(std::string_view account_id, std::string_view msgid,
                                            std::int64_t now_ms, const StreamOptions& options) {
  std::string key = msgid_key(account_id, msgid);
  std::lock_guard lock(mutex_);
  if (auto found = by_msgid_.find(key); found != by_msgid_.end()) {
    auto entry = entries_.find(found->second);
    if (entry != entries_.end() && (entry->second.expires_ms > now_ms || !entry->second.finished)) {
      // Live, or expired but still unfinished: the sweep owns that one (it delivers the unseen
      // text and frees the user's lane), so a late retry must not replace it.
      return OpenResult{entry->second.id, false};
    }
    if (entry != entries_.end()) erase_locked(entry);
    else by_msgid_.erase(found);
  }
  if (entries_.size() >= max_open_ && !make_room_locked(now_ms)) return std::nullopt;
  Entry entry;
  do {
    entry.id = make_id_();
  } while (entry.id.empty() || entries_.count(entry.id));
  entry.account_id = std::string(account_id);
  entry.msgid_key = key;
  entry.created_ms = now_ms;
  entry.expires_ms = now_ms + options.ttl_ms;
  entry.refresh_warn_ms = options.refresh_warn_ms;
  entry.handoff_at_ms = options.handoff_after_ms > 0 ? now_ms + options.handoff_after_ms : 0;
  entry.response_url = options.response_url;
  entry.continued_note = options.continued_note;
  std::string id = entry.id;
  by_msgid_.emplace(std::move(key), id);
  entries_.emplace(id, std::move(entry));
  return OpenResult{std::move(id), true};
}

std::optional<StreamView> StreamTable::view(std::string_view account_id, std::string_view stream_id,
                                            bool is_refresh, std::int64_t now_ms) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(stream_id);
  if (it == entries_.end()) return std::nullopt;
  Entry& entry = it->second;
  if (entry.account_id != account_id || entry.expires_ms <= now_ms) return std::nullopt;
  if (is_refresh) {
    ++entry.refreshes;
  } else if (!entry.first_reply_sent) {
    entry.first_reply_sent = true;
    entry.first_reply_ms = now_ms;
    entry.first_reply_final = entry.finished;
  }
  return make_view(entry);
}

UpdateResult StreamTable::push(std::string_view stream_id, std::string_view text, PushMode mode) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(stream_id);
  if (it == entries_.end()) return UpdateResult::NotFound;
  Entry& entry = it->second;
  if (entry.finished) return UpdateResult::Closed;
  if (mode == PushMode::Replace) entry.content.assign(text);
  else entry.content.append(text);
  return UpdateResult::Ok;
}

UpdateResult StreamTable::finish(std::string_view stream_id, FinishKind kind, std::string_view text,
                                 std::optional<Remainder>* remainder) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(stream_id);
  if (it == entries_.end()) return UpdateResult::NotFound;
  Entry& entry = it->second;
  if (entry.finished) return UpdateResult::Closed;
  if (!text.empty()) {
    // A failure keeps whatever was already streamed and adds the reason below it, so the user
    // sees both instead of an endless placeholder.
    if (!entry.content.empty() && kind == FinishKind::Failed) entry.content += "\n\n";
    entry.content.append(text);
  }
  entry.finished = true;
  entry.failed = kind == FinishKind::Failed;
  finished_by_age_.emplace(entry.created_ms, entry.id);
  const std::size_t shown = visible_prefix(entry);
  if (remainder && (entry.handed_off || shown < entry.content.size())) {
    *remainder = Remainder{entry.account_id, entry.id, entry.response_url, entry.content.substr(shown), false};
  }
  return UpdateResult::Ok;
}

UpdateResult StreamTable::attach_image(std::string_view stream_id, ReplyImage image) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(stream_id);
  if (it == entries_.end()) return UpdateResult::NotFound;
  Entry& entry = it->second;
  if (entry.finished || entry.handed_off) return UpdateResult::Closed;
  if (entry.images.size() >= kMaxReplyImages) return UpdateResult::Full;
  entry.images.push_back(std::move(image));
  return UpdateResult::Ok;
}

SweepResult StreamTable::sweep(std::int64_t now_ms) {
  SweepResult result;
  auto& notices = result.notices;
  std::lock_guard lock(mutex_);
  for (auto it = entries_.begin(); it != entries_.end();) {
    Entry& entry = it->second;
    if (entry.expires_ms <= now_ms) {
      if (!entry.finished) {
        // The agent never finished: whatever WeCom could not show goes out through response_url
        // (marked interrupted) rather than vanishing with the entry.
        const std::size_t shown = visible_prefix(entry);
        notices.push_back({SweepNotice::Kind::Expired, entry.account_id, entry.id, entry.content.size() - shown});
        result.remainders.push_back(
            Remainder{entry.account_id, entry.id, entry.response_url, entry.content.substr(shown), true});
        result.closed.push_back(entry.id);
      }
      auto next = std::next(it);
      erase_locked(it);
      it = next;
      continue;
    }
    if (!entry.finished && !entry.handed_off && entry.handoff_at_ms && now_ms >= entry.handoff_at_ms) {
      entry.shown_bytes = visible_prefix(entry);
      entry.handed_off = true;
      notices.push_back({SweepNotice::Kind::HandedOff, entry.account_id, entry.id, entry.shown_bytes});
    }
    if (entry.first_reply_sent && !entry.first_reply_final && entry.refreshes == 0 &&
        !entry.warned_no_refresh && now_ms - entry.first_reply_ms >= entry.refresh_warn_ms) {
      entry.warned_no_refresh = true;
      notices.push_back({SweepNotice::Kind::RefreshMissing, entry.account_id, entry.id, 0});
    }
    ++it;
  }
  return result;
}

std::optional<std::string> StreamTable::overflow(std::string_view stream_id) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(stream_id);
  if (it == entries_.end()) return std::nullopt;
  return it->second.content.substr(visible_prefix(it->second));
}

std::size_t StreamTable::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

std::size_t StreamTable::open_count(std::string_view account_id) const {
  std::lock_guard lock(mutex_);
  std::size_t n = 0;
  for (const auto& [id, entry] : entries_) {
    if (entry.account_id == account_id && !entry.finished) ++n;
  }
  return n;
}

}  // namespace cwc::stream
