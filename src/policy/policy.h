// Who may reach the agent: DM policy (pairing | allowlist | open | disabled) for single chats,
// group policy (open | allowlist | disabled, per-group settings) for group chats, and the pairing
// requests that let an owner approve new users. The allow-from list and pending pairing requests
// live in the host's store, so approvals survive restarts and are shared with the host's CLI.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "core/host.h"
#include "message/message.h"

namespace cwc::policy {

inline constexpr std::size_t kPairingCodeLength = 8;
inline constexpr std::int64_t kPairingTtlMs = 60 * 60 * 1000;  // 1 hour
inline constexpr std::size_t kMaxPendingPairings = 3;

struct PairingRequest {
  std::string code;
  std::string user_id;
  std::int64_t created_ms = 0;
  std::int64_t last_seen_ms = 0;
};

enum class Verdict {
  Allow,   // hand the message to the agent
  Answer,  // do not dispatch; answer `text` in a finished stream (pairing code, rejection)
  Ignore,  // do not dispatch; answer nothing (e.g. a group the bot is not enabled in)
};

struct Decision {
  Verdict verdict = Verdict::Allow;
  std::string text;    // Answer: what the user sees
  std::string reason;  // for the one log line
};

// Store namespaces, shared with hosts that implement the store (and their pairing CLI).
std::string allow_from_namespace(std::string_view account_id);  // key "list": JSON array of userids
std::string pairing_namespace(std::string_view account_id);     // key "requests": JSON array

// The text after a group @mention of the bot: "@Bot  hi" → "hi". Only a leading mention is
// removed; mentions of other people later in the text stay.
std::string strip_leading_mention(std::string_view text);

class AccessControl {
 public:
  explicit AccessControl(core::Host& host) : host_(host) {}

  Decision evaluate(const config::AccountConfig& account, const message::Message& msg);

  // Pending (unexpired) pairing requests of one account.
  Result<std::vector<PairingRequest>> pending(std::string_view account_id);

  // Approves `code`: the user joins the account's allow-from store and the request is removed.
  // Returns the approved user id; NotFound for an unknown/expired code, Internal when the store
  // cannot be read or written (nothing is overwritten then).
  Result<std::string> approve(std::string_view account_id, std::string_view code);

  Result<std::vector<std::string>> stored_allow_from(std::string_view account_id);

 private:
  Decision evaluate_direct(const config::AccountConfig& account, const message::Message& msg);
  Decision evaluate_group(const config::AccountConfig& account, const message::Message& msg);
  Decision pairing_answer(const config::AccountConfig& account, const std::string& user_id);
  bool is_allowed_sender(const config::AccountConfig& account, const std::string& user_id);
  Result<std::vector<PairingRequest>> load_requests(std::string_view account_id);
  bool save_requests(std::string_view account_id, const std::vector<PairingRequest>& requests);
  std::string new_code();

  core::Host& host_;
  std::mutex pairing_mutex_;  // read-modify-write of the pairing store
};

}  // namespace cwc::policy
