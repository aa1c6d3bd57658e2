#include "config/config.h"

#include "common/text_checks.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <set>

namespace cwc::config {
namespace {

using nlohmann::json;

constexpr std::string_view kRoot = "channels.wecom";

// The deepest real configuration is 4 levels (accounts.<id>.groups.<chat>). merged_account()
// copies values, and nlohmann's copy is recursive: a value nested thousands of levels deep
// overflowed the stack (found by fuzz_config). Bounding the depth before parsing fixes that.
constexpr std::size_t kMaxConfigDepth = 32;

// Keys an account (or the top level, as the account template) may carry.
const std::set<std::string, std::less<>> kAccountKeys = {
    "enabled", "name", "webhookPath", "token", "encodingAESKey", "receiveId", "welcomeText", "dm",
    "groupPolicy", "groupAllowFrom", "groups", "streamPlaceholder", "rejectText", "maxBodyBytes",
    "streamTtlSeconds", "refreshWarnSeconds", "mediaMaxBytes", "mediaDir", "mediaTimeoutSeconds",
    "handoffMarginSeconds", "continuedText", "maxInFlightPerUser", "maxTimestampSkewSeconds"};
const std::set<std::string, std::less<>> kTopLevelOnlyKeys = {"accounts", "defaultAccount",
                                                              "maxOpenStreams"};

Error config_error(const std::string& key_path, const std::string& what) {
  return make_error(ErrorKind::Config, key_path + " " + what);
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

Status check_known_keys(const json& obj, const std::string& path, bool top_level) {
  for (const auto& [key, value] : obj.items()) {
    if (kAccountKeys.count(key) || (top_level && kTopLevelOnlyKeys.count(key))) continue;
    std::string hint;
    for (const auto* keys : {&kAccountKeys, &kTopLevelOnlyKeys}) {
      for (const auto& known : *keys) {
        if (lower(known) == lower(key)) hint = " (did you mean \"" + known + "\"?)";
      }
    }
    if (!top_level && kTopLevelOnlyKeys.count(key)) hint = " (it belongs directly under channels.wecom)";
    return config_error(path + "." + key, "is not a known key" + hint);
  }
  return Ok{};
}

Result<std::string> get_string(const json& obj, const char* key, const std::string& path) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::string();
  if (!it->is_string()) return config_error(path + "." + key, "must be a string");
  return it->get<std::string>();
}

Result<std::optional<bool>> get_bool(const json& obj, const char* key, const std::string& path) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::optional<bool>();
  if (!it->is_boolean()) return config_error(path + "." + key, "must be true or false");
  return std::optional<bool>(it->get<bool>());
}

Result<std::optional<long long>> get_int(const json& obj, const char* key, const std::string& path,
                                         long long min, long long max) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::optional<long long>();
  if (!it->is_number_integer()) return config_error(path + "." + key, "must be an integer");
  const long long v = it->get<long long>();
  if (v < min || v > max) {
    return config_error(path + "." + key, "must be between " + std::to_string(min) + " and " +
                                              std::to_string(max) + " (got " + std::to_string(v) + ")");
  }
  return std::optional<long long>(v);
}

Result<std::vector<std::string>> get_string_list(const json& obj, const char* key, const std::string& path) {
  std::vector<std::string> out;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return out;
  if (!it->is_array()) return config_error(path + "." + key, "must be a list of strings");
  for (const auto& item : *it) {
    // Numeric userids are common in WeCom; accept them as strings.
    if (item.is_string()) out.push_back(item.get<std::string>());
    else if (item.is_number_integer()) out.push_back(std::to_string(item.get<long long>()));
    else return config_error(path + "." + key, "must be a list of strings");
  }
  return out;
}

// Merges the top-level template under an account object: account keys win.
json merged_account(const json& top, const json& account) {
  json merged = json::object();
  for (const auto& [key, value] : top.items()) {
    if (kAccountKeys.count(key)) merged[key] = value;
  }
  for (const auto& [key, value] : account.items()) {
    if (key == "dm" && value.is_object() && merged.contains("dm") && merged["dm"].is_object()) {
      for (const auto& [dk, dv] : value.items()) merged["dm"][dk] = dv;
    } else {
      merged[key] = value;
    }
  }
  return merged;
}

Result<AccountConfig> parse_account(const std::string& id, const json& obj, const std::string& path) {
  AccountConfig account;
  account.id = id;
#define CWC_TRY(var, expr)          \
  auto var = (expr);                \
  if (!var) return var.error();

  CWC_TRY(name, get_string(obj, "name", path));
  account.name = *name;
  CWC_TRY(enabled, get_bool(obj, "enabled", path));
  account.enabled = enabled->value_or(true);

  CWC_TRY(webhook_path, get_string(obj, "webhookPath", path));
  if (!webhook_path->empty()) account.webhook_path = *webhook_path;
  if (account.webhook_path.front() != '/') {
    return config_error(path + ".webhookPath", "must start with \"/\" (got \"" + account.webhook_path + "\")");
  }
  if (account.webhook_path.find_first_of("?# \t") != std::string::npos) {
    return config_error(path + ".webhookPath", "must be a plain path without '?', '#' or spaces");
  }
  if (account.webhook_path.size() > 1 && account.webhook_path.back() == '/') account.webhook_path.pop_back();

  CWC_TRY(token, get_string(obj, "token", path));
  if (token->empty()) {
    return config_error(path + ".token", "is required: copy the Token from the WeCom bot's API settings");
  }
  if (token->find_first_of(" \t\r\n") != std::string::npos) {
    return config_error(path + ".token", "contains whitespace: copy the Token exactly as WeCom shows it");
  }
  account.token = *token;

  auto key_it = obj.find("encodingAESKey");
  if (key_it == obj.end() || key_it->is_null() ||
      (key_it->is_string() && key_it->get_ref<const std::string&>().empty())) {
    return config_error(path + ".encodingAESKey",
                        "is required: copy the 43-character EncodingAESKey from the WeCom bot's API settings");
  }
  if (!key_it->is_string()) return config_error(path + ".encodingAESKey", "must be a string");
  auto key = crypto::AesKey::from_encoding_aes_key(key_it->get_ref<const std::string&>());
  if (!key) return make_error(ErrorKind::Config, path + ".encodingAESKey " + key.error().detail, key.error().wecom_code());
  account.aes_key = *key;

  CWC_TRY(receive_id, get_string(obj, "receiveId", path));
  account.receive_id = *receive_id;

  if (auto it = obj.find("welcomeText"); it != obj.end() && !it->is_null()) {
    if (!it->is_string()) return config_error(path + ".welcomeText", "must be a string");
    account.welcome_text = it->get<std::string>();
  }

  if (auto it = obj.find("dm"); it != obj.end() && !it->is_null()) {
    if (!it->is_object()) return config_error(path + ".dm", "must be an object like { policy: \"pairing\" }");
    for (const auto& [k, v] : it->items()) {
      if (k != "policy" && k != "allowFrom") {
        return config_error(path + ".dm." + k, "is not a known key (dm takes policy and allowFrom)");
      }
    }
    CWC_TRY(policy, get_string(*it, "policy", path + ".dm"));
    if (policy->empty() || *policy == "pairing") account.dm_policy = DmPolicy::Pairing;
    else if (*policy == "allowlist") account.dm_policy = DmPolicy::Allowlist;
    else if (*policy == "open") account.dm_policy = DmPolicy::Open;
    else if (*policy == "disabled") account.dm_policy = DmPolicy::Disabled;
    else {
      return config_error(path + ".dm.policy",
                          "must be one of pairing, allowlist, open, disabled (got \"" + *policy + "\")");
    }
    CWC_TRY(allow, get_string_list(*it, "allowFrom", path + ".dm"));
    account.dm_allow_from = *allow;
  }
  if (account.dm_policy == DmPolicy::Open &&
      std::find(account.dm_allow_from.begin(), account.dm_allow_from.end(), "*") == account.dm_allow_from.end()) {
    // Clawdbot's convention: an open DM policy must say so explicitly in allowFrom.
    return config_error(path + ".dm.allowFrom", "must contain \"*\" when dm.policy is \"open\"");
  }

  CWC_TRY(group_policy, get_string(obj, "groupPolicy", path));
  if (group_policy->empty() || *group_policy == "open") account.group_policy = GroupPolicy::Open;
  else if (*group_policy == "allowlist") account.group_policy = GroupPolicy::Allowlist;
  else if (*group_policy == "disabled") account.group_policy = GroupPolicy::Disabled;
  else {
    return config_error(path + ".groupPolicy",
                        "must be one of open, allowlist, disabled (got \"" + *group_policy + "\")");
  }
  CWC_TRY(group_allow, get_string_list(obj, "groupAllowFrom", path));
  account.group_allow_from = *group_allow;

  if (auto it = obj.find("groups"); it != obj.end() && !it->is_null()) {
    if (!it->is_object()) return config_error(path + ".groups", "must be an object keyed by chatid or \"*\"");
    for (const auto& [chat, settings] : it->items()) {
      const std::string gpath = path + ".groups." + chat;
      if (!settings.is_object()) return config_error(gpath, "must be an object");
      for (const auto& [k, v] : settings.items()) {
        if (k != "requireMention" && k != "enabled") {
          return config_error(gpath + "." + k, "is not a known key (groups take requireMention and enabled)");
        }
      }
      GroupSettings group;
      CWC_TRY(require_mention, get_bool(settings, "requireMention", gpath));
      CWC_TRY(group_enabled, get_bool(settings, "enabled", gpath));
      group.require_mention = *require_mention;
      group.enabled = *group_enabled;
      account.groups.emplace(chat, group);
    }
  }

  if (auto it = obj.find("streamPlaceholder"); it != obj.end() && !it->is_null()) {
    if (!it->is_string() || it->get_ref<const std::string&>().empty()) {
      return config_error(path + ".streamPlaceholder", "must be a non-empty string (WeCom shows it until the answer starts)");
    }
    account.stream_placeholder = it->get<std::string>();
  }
  if (auto it = obj.find("rejectText"); it != obj.end() && !it->is_null()) {
    if (!it->is_string() || it->get_ref<const std::string&>().empty()) {
      return config_error(path + ".rejectText", "must be a non-empty string");
    }
    account.reject_text = it->get<std::string>();
  }
  CWC_TRY(max_body, get_int(obj, "maxBodyBytes", path, 1024, 16 * 1024 * 1024));
  if (*max_body) account.max_body_bytes = static_cast<std::size_t>(**max_body);
  CWC_TRY(ttl, get_int(obj, "streamTtlSeconds", path, 60, 86400));
  if (*ttl) account.stream_ttl_seconds = static_cast<int>(**ttl);
  CWC_TRY(warn, get_int(obj, "refreshWarnSeconds", path, 1, 300));
  if (*warn) account.refresh_warn_seconds = static_cast<int>(**warn);
  CWC_TRY(media_max, get_int(obj, "mediaMaxBytes", path, 1024, 100 * 1024 * 1024));
  if (*media_max) account.media_max_bytes = static_cast<std::size_t>(**media_max);
  CWC_TRY(media_dir, get_string(obj, "mediaDir", path));
  account.media_dir = std::move(*media_dir);
  CWC_TRY(media_timeout, get_int(obj, "mediaTimeoutSeconds", path, 5, 290));
  if (*media_timeout) account.media_timeout_seconds = static_cast<int>(**media_timeout);
  CWC_TRY(margin, get_int(obj, "handoffMarginSeconds", path, 0, 300));
  if (*margin) account.handoff_margin_seconds = static_cast<int>(**margin);
  if (auto it = obj.find("continuedText"); it != obj.end() && !it->is_null()) {
    if (!it->is_string() || it->get_ref<const std::string&>().empty() || it->get_ref<const std::string&>().size() > 256) {
      return config_error(path + ".continuedText", "must be a non-empty string of at most 256 bytes");
    }
    account.continued_text = it->get<std::string>();
  }
  CWC_TRY(inflight, get_int(obj, "maxInFlightPerUser", path, 1, 3));
  if (*inflight) account.max_in_flight_per_user = static_cast<int>(**inflight);
  CWC_TRY(skew, get_int(obj, "maxTimestampSkewSeconds", path, 0, 86400));
  if (*skew) {
    // A window of a few seconds would reject WeCom's own retries and any request that waited in
    // a proxy; such a value is almost certainly a unit mistake.
    if (**skew > 0 && **skew < 30) {
      return config_error(path + ".maxTimestampSkewSeconds", "must be 0 (off) or at least 30 (seconds)");
    }
    account.max_timestamp_skew_seconds = static_cast<int>(**skew);
  }
#undef CWC_TRY
  return account;
}

}  // namespace

std::string_view to_string(DmPolicy policy) {
  switch (policy) {
    case DmPolicy::Pairing: return "pairing";
    case DmPolicy::Allowlist: return "allowlist";
    case DmPolicy::Open: return "open";
    case DmPolicy::Disabled: return "disabled";
  }
  return "pairing";
}

std::string_view to_string(GroupPolicy policy) {
  switch (policy) {
    case GroupPolicy::Open: return "open";
    case GroupPolicy::Allowlist: return "allowlist";
    case GroupPolicy::Disabled: return "disabled";
  }
  return "open";
}

const AccountConfig* ChannelConfig::find_account(std::string_view id) const {
  for (const auto& account : accounts) {
    if (account.id == id) return &account;
  }
  return nullptr;
}

Result<ChannelConfig> parse_channel_config(std::string_view json_text) {
  if (!checks::json_depth_within(json_text, kMaxConfigDepth)) {
    return config_error(std::string(kRoot), "nests deeper than " + std::to_string(kMaxConfigDepth) + " levels");
  }
  json root = json::parse(json_text.begin(), json_text.end(), nullptr, false);
  if (root.is_discarded()) return config_error(std::string(kRoot), "is not valid JSON");
  if (!root.is_object()) return config_error(std::string(kRoot), "must be an object");
  const std::string path(kRoot);
  if (auto st = check_known_keys(root, path, true); !st) return st.error();

  ChannelConfig config;
  if (auto enabled = get_bool(root, "enabled", path); !enabled) return enabled.error();
  else config.enabled = enabled->value_or(true);
  if (auto max_streams = get_int(root, "maxOpenStreams", path, 16, 1000000); !max_streams) {
    return max_streams.error();
  } else if (*max_streams) {
    config.max_open_streams = static_cast<std::size_t>(**max_streams);
  }
  auto default_account = get_string(root, "defaultAccount", path);
  if (!default_account) return default_account.error();

  auto accounts_it = root.find("accounts");
  if (accounts_it != root.end() && !accounts_it->is_null()) {
    if (!accounts_it->is_object()) {
      return config_error(path + ".accounts", "must be an object keyed by account id");
    }
    if (accounts_it->empty()) return config_error(path + ".accounts", "is empty: add at least one account");
    for (const auto& [id, value] : accounts_it->items()) {
      const std::string apath = path + ".accounts." + id;
      if (id.empty() || id.size() > 64 ||
          !std::all_of(id.begin(), id.end(), [](unsigned char c) { return std::isalnum(c) || c == '_' || c == '-'; })) {
        return config_error(apath, "is not a valid account id (letters, digits, '_' and '-', at most 64)");
      }
      if (!value.is_object()) return config_error(apath, "must be an object");
      if (auto st = check_known_keys(value, apath, false); !st) return st.error();
      auto account = parse_account(id, merged_account(root, value), apath);
      if (!account) return account.error();
      config.accounts.push_back(std::move(*account));
    }
    config.default_account = default_account->empty() ? config.accounts.front().id : *default_account;
    if (!config.find_account(config.default_account)) {
      return config_error(path + ".defaultAccount",
                          "names \"" + config.default_account + "\", which is not under channels.wecom.accounts");
    }
  } else {
    auto account = parse_account(std::string(kDefaultAccountId), root, path);
    if (!account) return account.error();
    config.accounts.push_back(std::move(*account));
    config.default_account = std::string(kDefaultAccountId);
    if (!default_account->empty() && *default_account != kDefaultAccountId) {
      return config_error(path + ".defaultAccount",
                          "names \"" + *default_account + "\" but no channels.wecom.accounts are configured");
    }
  }

  // Two enabled accounts on one path could never be told apart: WeCom signs with per-account tokens,
  // but routing happens before that.
  for (std::size_t i = 0; i < config.accounts.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      const auto& a = config.accounts[i];
      const auto& b = config.accounts[j];
      if (a.enabled && b.enabled && a.webhook_path == b.webhook_path) {
        return config_error(path + ".accounts." + a.id + ".webhookPath",
                            "duplicates the webhookPath \"" + a.webhook_path + "\" of account \"" + b.id +
                                "\": give each account its own path");
      }
    }
  }
  return config;
}

}  // namespace cwc::config
