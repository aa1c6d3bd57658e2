#include "policy/policy.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cctype>

namespace cwc::policy {
namespace {

using nlohmann::json;

// No 0/O, 1/I/L: codes are read aloud and typed by hand.
constexpr std::string_view kCodeAlphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789";

// WeCom separates a mention from the text with U+2005 (four-per-em space).
constexpr std::string_view kMentionSpace = "\xE2\x80\x85";

bool contains(const std::vector<std::string>& list, std::string_view value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

bool is_blank_at(std::string_view text, std::size_t i) {
  return text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r' ||
         text.substr(i, kMentionSpace.size()) == kMentionSpace;
}

std::size_t skip_blank(std::string_view text, std::size_t i) {
  while (i < text.size() && is_blank_at(text, i)) {
    i += text.substr(i, kMentionSpace.size()) == kMentionSpace ? kMentionSpace.size() : 1;
  }
  return i;
}

}  // namespace

std::string allow_from_namespace(std::string_view account_id) {
  return "wecom:" + std::string(account_id) + ":allowFrom";
}

std::string pairing_namespace(std::string_view account_id) {
  return "wecom:" + std::string(account_id) + ":pairing";
}

std::string strip_leading_mention(std::string_view text) {
  std::size_t i = skip_blank(text, 0);
  if (i >= text.size() || text[i] != '@') return std::string(text);
  while (i < text.size() && !is_blank_at(text, i)) ++i;
  return std::string(text.substr(skip_blank(text, i)));
}

Result<std::vector<std::string>> AccessControl::stored_allow_from(std::string_view account_id) {
  std::vector<std::string> out;
  auto stored = host_.store_get(allow_from_namespace(account_id), "list");
  if (!stored) return stored.error();
  if (!*stored) return out;
  json doc = json::parse(**stored, nullptr, false);
  if (!doc.is_array()) return make_error(ErrorKind::Internal, "the allow-from store is not a JSON array");
  for (const auto& item : doc) {
    if (item.is_string()) out.push_back(item.get<std::string>());
  }
  return out;
}

bool AccessControl::is_allowed_sender(const config::AccountConfig& account, const std::string& user_id) {
  if (contains(account.dm_allow_from, "*") || contains(account.dm_allow_from, user_id)) return true;
  auto stored = stored_allow_from(account.id);
  if (!stored) {
    // Fail closed: an unreadable store approves nobody (dm.allowFrom still works).
    host_.log(core::LogLevel::Error, account.id, stored.error().detail + "; " + user_id + " is treated as not approved");
    return false;
  }
  return contains(*stored, user_id);
}

Decision AccessControl::evaluate(const config::AccountConfig& account, const message::Message& msg) {
  if (msg.chattype == message::ChatType::Group) return evaluate_group(account, msg);
  return evaluate_direct(account, msg);
}

Decision AccessControl::evaluate_direct(const config::AccountConfig& account, const message::Message& msg) {
  using config::DmPolicy;
  switch (account.dm_policy) {
    case DmPolicy::Open:
      return {Verdict::Allow, "", ""};
    case DmPolicy::Disabled:
      return {Verdict::Answer, account.reject_text, "direct messages are disabled (dm.policy \"disabled\")"};
    case DmPolicy::Allowlist:
      if (is_allowed_sender(account, msg.from_userid)) return {Verdict::Allow, "", ""};
      return {Verdict::Answer, account.reject_text,
              "sender " + msg.from_userid + " is not in dm.allowFrom (dm.policy \"allowlist\")"};
    case DmPolicy::Pairing:
      if (is_allowed_sender(account, msg.from_userid)) return {Verdict::Allow, "", ""};
      return pairing_answer(account, msg.from_userid);
  }
  return {Verdict::Answer, account.reject_text, "unknown dm policy"};
}

Decision AccessControl::evaluate_group(const config::AccountConfig& account, const message::Message& msg) {
  using config::GroupPolicy;
  const auto exact = account.groups.find(msg.chatid);
  const auto wildcard = account.groups.find("*");
  const config::GroupSettings* settings = exact != account.groups.end()      ? &exact->second
                                          : wildcard != account.groups.end() ? &wildcard->second
                                                                             : nullptr;
  if (account.group_policy == GroupPolicy::Disabled) {
    return {Verdict::Ignore, "", "group chats are disabled (groupPolicy \"disabled\")"};
  }
  if (settings && settings->enabled == false) {
    return {Verdict::Ignore, "", "group " + msg.chatid + " is disabled (groups." + msg.chatid + ".enabled)"};
  }
  if (account.group_policy == GroupPolicy::Allowlist) {
    // A group is allowed by its chatid (groupAllowFrom or its own groups.<chatid> entry); a
    // sender listed in groupAllowFrom may use the bot in any group, as in other Clawdbot channels.
    const bool listed = contains(account.group_allow_from, msg.chatid) ||
                        contains(account.group_allow_from, msg.from_userid) || exact != account.groups.end();
    if (!listed) {
      return {Verdict::Ignore, "",
              "group " + msg.chatid + " / sender " + msg.from_userid +
                  " not in groupAllowFrom or groups (groupPolicy \"allowlist\")"};
    }
  }
  // WeCom only forwards group messages that @mention the bot, so a text without any mention can
  // only come from a client that does not show it; requireMention then keeps the bot quiet.
  if (settings && settings->require_mention == true && msg.type == message::MsgType::Text &&
      msg.text.find('@') == std::string::npos) {
    return {Verdict::Ignore, "", "message does not mention the bot (requireMention)"};
  }
  return {Verdict::Allow, "", ""};
}

Result<std::vector<PairingRequest>> AccessControl::load_requests(std::string_view account_id) {
  std::vector<PairingRequest> out;
  auto stored = host_.store_get(pairing_namespace(account_id), "requests");
  if (!stored) return stored.error();
  if (!*stored) return out;
  json doc = json::parse(**stored, nullptr, false);
  if (!doc.is_array()) return make_error(ErrorKind::Internal, "the pairing store is not a JSON array");
  for (const auto& item : doc) {
    if (!item.is_object()) continue;
    PairingRequest r;
    r.code = item.value("code", "");
    r.user_id = item.value("userId", "");
    r.created_ms = item.value("createdAt", std::int64_t{0});
    r.last_seen_ms = item.value("lastSeenAt", r.created_ms);
    if (!r.code.empty() && !r.user_id.empty()) out.push_back(std::move(r));
  }
  return out;
}

bool AccessControl::save_requests(std::string_view account_id, const std::vector<PairingRequest>& requests) {
  json doc = json::array();
  for (const auto& r : requests) {
    doc.push_back({{"code", r.code}, {"userId", r.user_id}, {"createdAt", r.created_ms}, {"lastSeenAt", r.last_seen_ms}});
  }
  return host_.store_put(pairing_namespace(account_id), "requests", doc.dump());
}

std::string AccessControl::new_code() {
  std::array<std::uint8_t, kPairingCodeLength> bytes{};
  if (!host_.random(bytes.data(), bytes.size())) return {};
  std::string code;
  for (auto b : bytes) code += kCodeAlphabet[b % kCodeAlphabet.size()];
  return code;
}

Decision AccessControl::pairing_answer(const config::AccountConfig& account, const std::string& user_id) {
  std::lock_guard lock(pairing_mutex_);
  const std::int64_t now = host_.now_ms();
  auto loaded = load_requests(account.id);
  if (!loaded) {
    // Never write over a store we could not read: it may hold other senders' requests.
    return {Verdict::Answer, "This assistant cannot check approvals right now. Please try again in a moment.",
            "pairing for " + user_id + " not possible: " + loaded.error().detail};
  }
  auto& requests = *loaded;
  std::erase_if(requests, [&](const PairingRequest& r) { return now - r.created_ms >= kPairingTtlMs; });
  auto mine = std::find_if(requests.begin(), requests.end(), [&](const auto& r) { return r.user_id == user_id; });
  std::string code;
  if (mine != requests.end()) {
    mine->last_seen_ms = now;  // the same sender asking again keeps the same code
    code = mine->code;
  } else if (requests.size() >= kMaxPendingPairings) {
    save_requests(account.id, requests);
    return {Verdict::Answer,
            "This assistant needs its owner's approval before it can talk to you, and too many approval "
            "requests are waiting right now. Please try again later.",
            "pairing for " + user_id + " refused: " + std::to_string(kMaxPendingPairings) +
                " requests are already pending"};
  } else {
    code = new_code();
    if (code.empty()) return {Verdict::Answer, account.reject_text, "no randomness for a pairing code"};
    requests.push_back({code, user_id, now, now});
  }
  if (!save_requests(account.id, requests)) {
    host_.log(core::LogLevel::Error, account.id, "could not save the pairing request of " + user_id);
  }
  std::string text = "This assistant needs its owner's approval before it can talk to you.\n\n";
  text += "Your WeCom user id: " + user_id + "\n";
  text += "Pairing code: " + code + "\n\n";
  text += "Ask the owner to run:\nclawdbot pairing approve wecom " + code;
  return {Verdict::Answer, std::move(text), "pairing code issued to unknown sender " + user_id};
}

Result<std::vector<PairingRequest>> AccessControl::pending(std::string_view account_id) {
  std::lock_guard lock(pairing_mutex_);
  const std::int64_t now = host_.now_ms();
  auto requests = load_requests(account_id);
  if (!requests) return requests.error();
  std::erase_if(*requests, [&](const PairingRequest& r) { return now - r.created_ms >= kPairingTtlMs; });
  return requests;
}

Result<std::string> AccessControl::approve(std::string_view account_id, std::string_view code) {
  std::lock_guard lock(pairing_mutex_);
  const std::int64_t now = host_.now_ms();
  auto loaded = load_requests(account_id);
  if (!loaded) return loaded.error();
  auto& requests = *loaded;
  std::string wanted(code);
  std::transform(wanted.begin(), wanted.end(), wanted.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  auto it = std::find_if(requests.begin(), requests.end(), [&](const PairingRequest& r) {
    return r.code == wanted && now - r.created_ms < kPairingTtlMs;
  });
  if (it == requests.end()) return make_error(ErrorKind::NotFound, "no pending request with this code");
  const std::string user_id = it->user_id;
  auto allowed = stored_allow_from(account_id);
  if (!allowed) return allowed.error();  // never replace a list we could not read
  if (!contains(*allowed, user_id)) allowed->push_back(user_id);
  if (!host_.store_put(allow_from_namespace(account_id), "list", json(*allowed).dump())) {
    return make_error(ErrorKind::Internal, "the host store failed to save the allow-from list");
  }
  requests.erase(it);
  save_requests(account_id, requests);
  return user_id;
}

}  // namespace cwc::policy
