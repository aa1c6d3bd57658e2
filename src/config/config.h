// `channels.wecom` configuration: parsed and validated once, at instance creation, with messages
// that name the key and the fix. Everything downstream trusts it.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "crypto/crypto.h"

namespace cwc::config {

enum class DmPolicy { Pairing, Allowlist, Open, Disabled };
enum class GroupPolicy { Open, Allowlist, Disabled };

std::string_view to_string(DmPolicy policy);
std::string_view to_string(GroupPolicy policy);

struct GroupSettings {
  std::optional<bool> require_mention;
  std::optional<bool> enabled;
};

struct AccountConfig {
  std::string id;             // "default" for the single-account form
  std::string name;
  bool enabled = true;
  std::string webhook_path = "/wecom";
  std::string token;
  crypto::AesKey aes_key{{}};
  std::string receive_id;
  std::optional<std::string> welcome_text;
  DmPolicy dm_policy = DmPolicy::Pairing;
  std::vector<std::string> dm_allow_from;
  GroupPolicy group_policy = GroupPolicy::Open;
  std::vector<std::string> group_allow_from;
  std::map<std::string, GroupSettings> groups;
  std::string stream_placeholder = "1";
  // What a sender the DM policy rejects sees (they never reach the agent).
  std::string reject_text = "Sorry, this assistant is not available to you. Ask its owner for access.";
  std::size_t max_body_bytes = 1024 * 1024;
  int stream_ttl_seconds = 600;
  int refresh_warn_seconds = 5;
  // Inbound images and files: downloaded (through the host), decrypted and stored here.
  std::size_t media_max_bytes = 20 * 1024 * 1024;
  std::string media_dir;  // "" → $TMPDIR/clawdbot-wecom-media (or /tmp/...)
  int media_timeout_seconds = 60;
  // WeCom stops refreshing a stream ~360 s after the user's message. This many seconds before
  // that, an unfinished answer leaves the stream (ending with continued_text) and the rest goes
  // out through response_url. 0: never hand off early (only the 20480-byte overflow moves).
  int handoff_margin_seconds = 30;
  std::string continued_text = "(continued below)";
  // WeCom's own limit of concurrent in-flight messages per user; later messages wait in order.
  int max_in_flight_per_user = 3;
  // Signed requests whose timestamp is further than this from the host's clock are refused
  // (401 stale timestamp): with a value <= stream_ttl_seconds no replay of a captured request
  // can run the agent twice. 0: off (the default: a host with a wrong clock would refuse all).
  int max_timestamp_skew_seconds = 0;
};

// WeCom stops refreshing streams this long after the user's message.
inline constexpr int kWecomStreamWindowSeconds = 360;

struct ChannelConfig {
  bool enabled = true;
  std::string default_account;
  std::vector<AccountConfig> accounts;  // in configuration order, disabled ones included
  std::size_t max_open_streams = 10000;

  const AccountConfig* find_account(std::string_view id) const;
};

inline constexpr std::string_view kDefaultAccountId = "default";
inline constexpr std::string_view kDefaultWebhookPath = "/wecom";

// Parses the JSON of `channels.wecom`. Errors are ErrorKind::Config with the message
// "channels.wecom.<key> ...: <fix>".
Result<ChannelConfig> parse_channel_config(std::string_view json_text);

}  // namespace cwc::config
