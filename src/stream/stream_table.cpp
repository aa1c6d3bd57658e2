#include "stream/stream_table.h"

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

StreamView StreamTable::make_view(const Entry& entry) {
  StreamView view;
  view.id = entry.id;
  view.finish = entry.finished;
  view.content = entry.content.substr(0, utf8_safe_prefix_length(entry.content, kMaxContentBytes));
  return view;
}

void StreamTable::erase_locked(std::unordered_map<std::string, Entry>::iterator it) {
  by_msgid_.erase(it->second.msgid_key);
  entries_.erase(it);
}

// Evicts the oldest finished stream. Unfinished ones are never evicted: their user would see
// an answer vanish mid-stream.
bool StreamTable::make_room_locked(std::int64_t now_ms) {
  auto victim = entries_.end();
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (it->second.expires_ms <= now_ms) {
      victim = it;
      break;
    }
    if (it->second.finished && (victim == entries_.end() || it->second.created_ms < victim->second.created_ms)) {
      victim = it;
    }
  }
  if (victim == entries_.end()) return false;
  erase_locked(victim);
  return true;
}

std::optional<OpenResult> StreamTable::open(std::string_view account_id, std::string_view msgid,
                                            std::int64_t now_ms, std::int64_t ttl_ms,
                                            std::int64_t refresh_warn_ms) {
  std::string key = msgid_key(account_id, msgid);
  std::lock_guard lock(mutex_);
  if (auto found = by_msgid_.find(key); found != by_msgid_.end()) {
    auto entry = entries_.find(found->second);
    if (entry != entries_.end() && entry->second.expires_ms > now_ms) {
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
  entry.expires_ms = now_ms + ttl_ms;
  entry.refresh_warn_ms = refresh_warn_ms;
  std::string id = entry.id;
  by_msgid_.emplace(std::move(key), id);
  entries_.emplace(id, std::move(entry));
  return OpenResult{std::move(id), true};
}

std::optional<StreamView> StreamTable::view(std::string_view account_id, std::string_view stream_id,
                                            bool is_refresh, std::int64_t now_ms) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(std::string(stream_id));
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
  auto it = entries_.find(std::string(stream_id));
  if (it == entries_.end()) return UpdateResult::NotFound;
  Entry& entry = it->second;
  if (entry.finished) return UpdateResult::Closed;
  if (mode == PushMode::Replace) entry.content.assign(text);
  else entry.content.append(text);
  return UpdateResult::Ok;
}

UpdateResult StreamTable::finish(std::string_view stream_id, FinishKind kind, std::string_view text) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(std::string(stream_id));
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
  return UpdateResult::Ok;
}

std::vector<SweepNotice> StreamTable::sweep(std::int64_t now_ms) {
  std::vector<SweepNotice> notices;
  std::lock_guard lock(mutex_);
  for (auto it = entries_.begin(); it != entries_.end();) {
    Entry& entry = it->second;
    if (entry.expires_ms <= now_ms) {
      notices.push_back({SweepNotice::Kind::Expired, entry.account_id, entry.id,
                         entry.finished ? 0 : entry.content.size()});
      auto next = std::next(it);
      erase_locked(it);
      it = next;
      continue;
    }
    if (entry.first_reply_sent && !entry.first_reply_final && entry.refreshes == 0 &&
        !entry.warned_no_refresh && now_ms - entry.first_reply_ms >= entry.refresh_warn_ms) {
      entry.warned_no_refresh = true;
      notices.push_back({SweepNotice::Kind::RefreshMissing, entry.account_id, entry.id, 0});
    }
    if (entry.finished && !entry.overflow_reported && entry.content.size() > kMaxContentBytes) {
      entry.overflow_reported = true;
      notices.push_back({SweepNotice::Kind::OverflowPending, entry.account_id, entry.id,
                         entry.content.size() - utf8_safe_prefix_length(entry.content, kMaxContentBytes)});
    }
    ++it;
  }
  return notices;
}

std::optional<std::string> StreamTable::overflow(std::string_view stream_id) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(std::string(stream_id));
  if (it == entries_.end()) return std::nullopt;
  const std::string& content = it->second.content;
  return content.substr(utf8_safe_prefix_length(content, kMaxContentBytes));
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
