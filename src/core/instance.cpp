#include "core/instance.h"

#include <nlohmann/json.hpp>

#include "common/text_checks.h"
#include "media/media.h"

#include <array>
#include <filesystem>
#include <optional>
#include <string_view>

namespace cwc::core {
namespace {

// maxTimestampSkewSeconds, checked after the signature (so the timestamp is WeCom's own, not
// something an attacker chose). `timestamp` is 1-20 digits (parse_signed_query); values past
// int64 are simply very far away.
std::optional<Error> outside_timestamp_window(const config::AccountConfig& cfg, std::string_view timestamp,
                                              std::int64_t now_seconds) {
  if (cfg.max_timestamp_skew_seconds <= 0) return std::nullopt;
  std::int64_t sent = 0;
  for (const char c : timestamp) {
    if (sent > (INT64_MAX - 9) / 10) {
      sent = INT64_MAX;
      break;
    }
    sent = sent * 10 + (c - '0');
  }
  const bool ahead = sent > now_seconds;
  const std::int64_t skew = ahead ? (sent - now_seconds) : (now_seconds - sent);
  if (skew <= cfg.max_timestamp_skew_seconds) return std::nullopt;
  return make_error(ErrorKind::StaleTimestamp,
                    "timestamp " + std::string(timestamp) + " is " + std::to_string(skew) + " s " +
                        (ahead ? "ahead of" : "behind") + " this host's clock (maxTimestampSkewSeconds " +
                        std::to_string(cfg.max_timestamp_skew_seconds) +
                        "): a replayed request, or this host's clock is wrong (check NTP)");
}

using nlohmann::ordered_json;

std::string peer_target(const message::Message& msg) {
  if (msg.chattype == message::ChatType::Group && !msg.chatid.empty()) return "wecom:group:" + msg.chatid;
  return "wecom:" + msg.from_userid;
}

// Media the host could not download for us (no callback_fetch): the bare urls, as in ABI 1.0.
std::string media_urls_json(const std::vector<message::MediaItem>& media) {
  ordered_json items = ordered_json::array();
  for (const auto& item : media) items.push_back({{"kind", item.kind}, {"url", item.url}});
  return items.dump();
}

// WeCom's limit for a response_url markdown message, in bytes.
constexpr std::size_t kMaxResponseUrlBytes = 20480;
// How long a response_url POST may take, and how much of its answer we read.
constexpr std::uint32_t kResponseUrlTimeoutMs = 30'000;
constexpr std::uint64_t kResponseUrlMaxAnswerBytes = 64 * 1024;
// How long media files are kept for the agent, and how often the directory is swept.
constexpr std::chrono::hours kMediaRetention{24};
constexpr std::int64_t kMediaSweepIntervalMs = 10 * 60 * 1000;
// A WeCom retry of an event (same msgid) is surfaced once.
constexpr std::int64_t kEventDedupeMs = 10 * 60 * 1000;

// Where an account's downloaded media lives: <mediaDir or the default>/<accountId>.
std::filesystem::path media_dir_of(const config::AccountConfig& cfg) {
  return (cfg.media_dir.empty() ? media::default_media_dir() : std::filesystem::path(cfg.media_dir)) / cfg.id;
}

std::string human_bytes(std::uint64_t bytes) {
  if (bytes >= 1024 * 1024) return std::to_string(bytes / (1024 * 1024)) + " MB";
  if (bytes >= 1024) return std::to_string(bytes / 1024) + " KB";
  return std::to_string(bytes) + " bytes";
}

// Every line the core logs goes through here. Lines carry values chosen by the sender (the path,
// ids and event types from messages); escaping control characters and bounding the length keeps
// the promise "one request, one log line" (no forged second line via "\n") and keeps the
// host's log valid UTF-8.
constexpr std::size_t kMaxLogLineBytes = 2048;
void log_line(Host& host, LogLevel level, std::string_view account_id, std::string_view line) {
  host.log(level, account_id, checks::printable(line, kMaxLogLineBytes, /*keep_utf8=*/true));
}

// Shown to the user when the host could not take the message at all.
constexpr std::string_view kDispatchRefusedText =
    "Sorry, the assistant cannot take messages right now. Please try again in a moment.";

}  // namespace

Result<std::unique_ptr<Instance>> Instance::create(std::string_view config_json, Host& host) {
  auto config = config::parse_channel_config(config_json);
  if (!config) return config.error();
  return std::unique_ptr<Instance>(new Instance(std::move(*config), host));
}

Instance::Instance(config::ChannelConfig config, Host& host)
    : config_(std::move(config)),
      host_(host),
      streams_(config_.max_open_streams, [this] { return new_stream_id(); }),
      access_(host) {
  for (const auto& account : config_.accounts) accounts_.push_back(std::make_unique<Account>(&account));
}

std::string Instance::new_stream_id() {
  std::array<std::uint8_t, 16> bytes{};
  if (!host_.random(bytes.data(), bytes.size())) return {};
  return "s" + crypto::to_hex(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

Instance::Account* Instance::route(std::string_view path) {
  if (!config_.enabled) return nullptr;
  if (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  for (auto& account : accounts_) {
    if (account->config->enabled && account->config->webhook_path == path) return account.get();
  }
  return nullptr;
}

HttpResponse Instance::fail(Account* account, const HttpRequest& request, const Error& error) {
  std::string line = std::to_string(error.http_status()) + " " + error.describe();
  if (error.wecom_code() != 0) line += " (" + std::to_string(error.wecom_code()) + ")";
  line += " — " + checks::printable(request.method, 16) + " " + checks::printable(request.path, 128);
  if (!request.remote_addr.empty()) line += " from " + checks::printable(request.remote_addr, 64);
  // Stored for status_json() too, which must stay valid UTF-8 (nlohmann throws on anything else).
  line = checks::printable(line, kMaxLogLineBytes, /*keep_utf8=*/true);
  const std::string_view account_id = account ? std::string_view(account->config->id) : std::string_view();
  if (account) {
    account->rejected.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(account->last_error_mutex);
    account->last_error = line;
    account->last_error_ms = now_ms();
  }
  log_line(host_, error.http_status() >= 500 ? LogLevel::Error : LogLevel::Warn, account_id, line);
  HttpResponse response;
  response.status = error.http_status();
  response.content_type = kContentTypeText;
  response.body = error.describe();
  return response;
}

HttpResponse Instance::handle(const HttpRequest& request) {
  Account* account = route(request.path);
  if (!account) {
    return fail(nullptr, request, make_error(ErrorKind::NotFound, "no enabled WeCom account has this webhookPath"));
  }
  account->requests.fetch_add(1, std::memory_order_relaxed);
  if (request.method == "GET") return handle_verify(*account, request);
  if (request.method == "POST") return handle_callback(*account, request);
  return fail(account, request, make_error(ErrorKind::MethodNotAllowed, "WeCom only sends GET and POST"));
}

HttpResponse Instance::handle_verify(Account& account, const HttpRequest& request) {
  auto query = envelope::parse_signed_query(request.query, /*want_echostr=*/true);
  if (!query) return fail(&account, request, query.error());
  const auto& cfg = *account.config;
  if (!account.crypto.signature_matches(query->msg_signature, cfg.token, query->timestamp, query->nonce,
                                        query->echostr)) {
    return fail(&account, request,
                make_error(ErrorKind::InvalidSignature, "VerifyURL signature does not match the configured token"));
  }
  if (auto stale = outside_timestamp_window(cfg, query->timestamp, now_ms() / 1000)) {
    return fail(&account, request, *stale);
  }
  auto plain = account.crypto.decrypt(query->echostr);
  if (!plain) return fail(&account, request, plain.error());
  log_line(host_, LogLevel::Info, cfg.id, "VerifyURL succeeded on " + cfg.webhook_path);
  HttpResponse response;
  response.content_type = kContentTypeText;
  response.body = std::move(*plain);  // the bare plaintext: no quotes, no newline
  return response;
}

HttpResponse Instance::handle_callback(Account& account, const HttpRequest& request) {
  const auto& cfg = *account.config;
  // Cheap checks first: nothing is parsed before the size cap and the query are fine.
  if (request.body.size() > cfg.max_body_bytes) {
    return fail(&account, request,
                make_error(ErrorKind::BodyTooLarge, std::to_string(request.body.size()) + " bytes > maxBodyBytes " +
                                                        std::to_string(cfg.max_body_bytes)));
  }
  auto query = envelope::parse_signed_query(request.query, /*want_echostr=*/false);
  if (!query) return fail(&account, request, query.error());
  auto env = envelope::parse_request_envelope(request.body);
  if (!env) return fail(&account, request, env.error());
  if (!account.crypto.signature_matches(query->msg_signature, cfg.token, query->timestamp, query->nonce,
                                        env->encrypt())) {
    return fail(&account, request,
                make_error(ErrorKind::InvalidSignature, "callback signature does not match the configured token"));
  }
  if (auto stale = outside_timestamp_window(cfg, query->timestamp, now_ms() / 1000)) {
    return fail(&account, request, *stale);
  }
  auto plain = account.crypto.decrypt(env->encrypt());
  if (!plain) return fail(&account, request, plain.error());
  message::Message msg;
  if (auto error = message::parse_message_into(*plain, msg)) return fail(&account, request, *error);

  account.last_inbound_ms.store(now_ms(), std::memory_order_relaxed);
  auto reply = handle_message(account, msg);
  if (!reply) return fail(&account, request, reply.error());

  HttpResponse response;
  if (reply->empty()) {
    response.content_type = kContentTypeText;  // an empty 200 means "no reply" to WeCom
    return response;
  }
  response.content_type = env->format == envelope::Format::Json ? kContentTypeText : kContentTypeXml;
  response.body = seal_reply(account, env->format, *reply, query->nonce);
  if (response.body.empty()) {
    return fail(&account, request, make_error(ErrorKind::Internal, "could not encrypt the reply (no randomness)"));
  }
  return response;
}

// Returns the reply plaintext, or "" for "no reply".
Result<std::string> Instance::handle_message(Account& account, const message::Message& msg) {
  const auto& cfg = *account.config;
  using message::MsgType;
  switch (msg.type) {
    case MsgType::StreamRefresh: {
      account.refreshes.fetch_add(1, std::memory_order_relaxed);
      auto view = streams_.view(cfg.id, msg.stream_id, /*is_refresh=*/true, now_ms());
      if (!view) {
        // Unknown, expired or another account's stream: finish it so the client stops asking.
        log_line(host_, LogLevel::Info, cfg.id, "refresh for unknown or expired stream; answering finish");
        return message::build_stream_reply({msg.stream_id, true, "", {}});
      }
      message::StreamReply reply{std::move(view->id), view->finish, std::move(view->content), {}};
      for (auto& image : view->images) reply.images.push_back({std::move(image.base64), std::move(image.md5_hex)});
      return message::build_stream_reply(reply);
    }
    case MsgType::Event: {
      if (msg.event_type == "enter_chat") {
        log_line(host_, LogLevel::Debug, cfg.id, "enter_chat from " + msg.from_userid);
        if (!cfg.welcome_text || cfg.welcome_text->empty()) return std::string();
        return message::build_text_reply(*cfg.welcome_text);
      }
      surface_event(account, msg);
      return std::string();
    }
    case MsgType::Unsupported:
      log_line(host_, LogLevel::Warn, cfg.id,
                "unsupported msgtype \"" + msg.msgtype.substr(0, 64) + "\" from " + msg.from_userid + " ignored");
      return std::string();
    default:
      break;
  }

  // Policy first: a sender who may not use the bot never reaches the agent, and an ignored
  // group message leaves no stream behind.
  const policy::Decision decision = access_.evaluate(cfg, msg);
  if (decision.verdict == policy::Verdict::Ignore) {
    log_line(host_, LogLevel::Info, cfg.id, "ignored msgid=" + msg.msgid + ": " + decision.reason);
    return std::string();
  }

  const std::int64_t now = now_ms();
  stream::StreamOptions options;
  options.ttl_ms = std::int64_t{cfg.stream_ttl_seconds} * 1000;
  options.refresh_warn_ms = std::int64_t{cfg.refresh_warn_seconds} * 1000;
  options.response_url = msg.response_url;
  options.continued_note = cfg.continued_text;
  // Without a response_url (or a host that can POST it) nothing could carry the rest of an
  // answer, so the stream keeps going as long as WeCom refreshes it.
  if (cfg.handoff_margin_seconds > 0 && !msg.response_url.empty() && host_.can_fetch()) {
    options.handoff_after_ms = std::int64_t{config::kWecomStreamWindowSeconds - cfg.handoff_margin_seconds} * 1000;
  }
  auto opened = streams_.open(cfg.id, msg.msgid, now, options);
  if (!opened) {
    return make_error(ErrorKind::Overloaded, std::to_string(config_.max_open_streams) +
                                                 " unfinished streams are open; WeCom will retry");
  }
  if (!opened->created) {
    log_line(host_, LogLevel::Info, cfg.id, "duplicate msgid=" + msg.msgid + " (WeCom retry): same stream, no new agent run");
  } else if (decision.verdict == policy::Verdict::Answer) {
    log_line(host_, LogLevel::Info, cfg.id, "not dispatched msgid=" + msg.msgid + ": " + decision.reason);
    streams_.finish(opened->stream_id, stream::FinishKind::Done, decision.text);
  } else {
    accept_user_message(account, msg, opened->stream_id);
  }
  auto view = streams_.view(cfg.id, opened->stream_id, /*is_refresh=*/false, now);
  // Gone (evicted, or a very late retry of an expired stream): tell WeCom it is over.
  if (!view) return message::build_stream_reply({opened->stream_id, true, "", {}});
  std::string content = view->content.empty() && !view->finish ? cfg.stream_placeholder : view->content;
  return message::build_stream_reply({view->id, view->finish, std::move(content), {}});
}

std::string Instance::seal_reply(Account& account, envelope::Format format, std::string_view plaintext,
                                 std::string_view nonce) {
  std::array<std::uint8_t, crypto::kRandomPrefixBytes> prefix{};
  if (!host_.random(prefix.data(), prefix.size())) return {};
  const std::string timestamp = std::to_string(now_ms() / 1000);
  const std::string& token = account.config->token;
  if (format == envelope::Format::Json) {
    // Every WeCom bot reply: encrypted, signed and closed in the one buffer that is sent.
    envelope::JsonReplyWriter writer(account.crypto.encrypted_size(plaintext.size()));
    if (!account.crypto.encrypt_append(writer.encrypt_target(), plaintext, prefix)) return {};
    const std::string signature = account.crypto.signature(token, timestamp, nonce, writer.encrypt());
    return std::move(writer).finish(signature, timestamp, nonce);
  }
  const std::string encrypted = account.crypto.encrypt(plaintext, prefix);
  if (encrypted.empty()) return {};
  const std::string signature = account.crypto.signature(token, timestamp, nonce, encrypted);
  return envelope::build_reply_envelope(format, encrypted, signature, timestamp, nonce);
}

stream::UpdateResult Instance::push(std::string_view stream_id, std::string_view text, stream::PushMode mode) {
  return streams_.push(stream_id, text, mode);
}

stream::UpdateResult Instance::finish(std::string_view stream_id, stream::FinishKind kind, std::string_view text) {
  std::optional<stream::Remainder> remainder;
  const auto result = streams_.finish(stream_id, kind, text, &remainder);
  if (result != stream::UpdateResult::Ok) return result;
  if (remainder) deliver_remainder(*remainder);
  stream_ended(stream_id);
  return result;
}

Result<stream::UpdateResult> Instance::attach_image(std::string_view stream_id, std::string_view bytes) {
  auto type = media::sniff_image(bytes);
  if (!type || (type->mime != "image/jpeg" && type->mime != "image/png")) {
    return make_error(ErrorKind::BadMessage, "WeCom reply images must be JPEG or PNG; send this one as a link");
  }
  if (bytes.size() > stream::kMaxReplyImageBytes) {
    return make_error(ErrorKind::BadMessage, "reply image is " + human_bytes(bytes.size()) +
                                                 "; WeCom accepts at most 10 MB per image; send it as a link");
  }
  const auto result = streams_.attach_image(stream_id, {crypto::base64_encode(bytes), crypto::md5_hex(bytes)});
  if (result == stream::UpdateResult::Full) {
    return make_error(ErrorKind::BadMessage, "a WeCom reply carries at most 10 images; send the rest as links");
  }
  return result;
}

std::string Instance::routes_json() const {
  ordered_json routes = ordered_json::array();
  if (!config_.enabled) return routes.dump();
  for (const auto& account : accounts_) {
    if (!account->config->enabled) continue;
    routes.push_back({{"accountId", account->config->id},
                      {"path", account->config->webhook_path},
                      {"methods", {"GET", "POST"}}});
  }
  return routes.dump();
}

std::string Instance::status_json() const {
  ordered_json accounts = ordered_json::array();
  for (const auto& account : accounts_) {
    const auto& cfg = *account->config;
    ordered_json entry = {{"accountId", cfg.id},
                          {"name", cfg.name.empty() ? cfg.id : cfg.name},
                          {"enabled", config_.enabled && cfg.enabled},
                          {"configured", true},
                          {"webhookPath", cfg.webhook_path},
                          {"keyValid", true},
                          {"receiveIdSet", !cfg.receive_id.empty()},
                          {"dmPolicy", config::to_string(cfg.dm_policy)},
                          {"groupPolicy", config::to_string(cfg.group_policy)},
                          {"welcomeText", cfg.welcome_text.has_value()},
                          {"openStreams", streams_.open_count(cfg.id)}};
    const std::int64_t last = account->last_inbound_ms.load(std::memory_order_relaxed);
    entry["lastInboundAt"] = last ? ordered_json(last) : ordered_json(nullptr);
    {
      std::lock_guard lock(account->last_error_mutex);
      entry["lastError"] = account->last_error.empty() ? ordered_json(nullptr) : ordered_json(account->last_error);
      entry["lastErrorAt"] = account->last_error_ms ? ordered_json(account->last_error_ms) : ordered_json(nullptr);
    }
    entry["counters"] = {{"requests", account->requests.load()},
                         {"messages", account->messages.load()},
                         {"refreshes", account->refreshes.load()},
                         {"rejected", account->rejected.load()}};
    accounts.push_back(std::move(entry));
  }
  ordered_json status = {{"channel", "wecom"},
                         {"enabled", config_.enabled},
                         {"defaultAccount", config_.default_account},
                         {"streams", streams_.size()},
                         {"maxOpenStreams", config_.max_open_streams},
                         {"accounts", std::move(accounts)}};
  return status.dump();
}

Result<std::string> Instance::probe_json(std::string_view account_id) {
  ordered_json results = ordered_json::array();
  bool all_ok = true;
  for (auto& account : accounts_) {
    const auto& cfg = *account->config;
    if (!account_id.empty() && cfg.id != account_id) continue;
    ordered_json entry = {{"accountId", cfg.id}, {"webhookPath", cfg.webhook_path}, {"keyValid", true}};
    // 1. Encrypt/decrypt round trip with the account key.
    std::array<std::uint8_t, crypto::kRandomPrefixBytes> prefix{};
    std::array<std::uint8_t, 8> echo_bytes{};
    const bool have_random = host_.random(prefix.data(), prefix.size()) && host_.random(echo_bytes.data(), echo_bytes.size());
    const std::string echo_plain = "probe-" + crypto::to_hex(std::string_view(reinterpret_cast<const char*>(echo_bytes.data()), echo_bytes.size()));
    const std::string echostr = account->crypto.encrypt(echo_plain, prefix);
    auto round_trip = account->crypto.decrypt(echostr);
    const bool crypto_ok = have_random && round_trip && *round_trip == echo_plain;
    entry["cryptoRoundTrip"] = crypto_ok;
    // 2. A signed VerifyURL request through the real request path.
    const std::string timestamp = std::to_string(now_ms() / 1000);
    const std::string nonce = crypto::to_hex(std::string_view(reinterpret_cast<const char*>(prefix.data()), 4));
    const std::string signature = crypto::compute_signature(cfg.token, timestamp, nonce, echostr);
    const std::string query = "msg_signature=" + signature + "&timestamp=" + timestamp + "&nonce=" + nonce +
                              "&echostr=" + envelope::percent_encode(echostr);
    bool route_ok = false;
    std::string route_detail;
    if (!config_.enabled || !cfg.enabled) {
      route_detail = "account disabled: no route";
    } else {
      HttpRequest request{"GET", cfg.webhook_path, query, "", "", "probe"};
      HttpResponse response = handle(request);
      route_ok = response.status == 200 && response.body == echo_plain;
      route_detail = route_ok ? "VerifyURL answered with the bare plaintext"
                              : "VerifyURL answered " + std::to_string(response.status) + ": " + response.body;
    }
    entry["route"] = {{"ok", route_ok}, {"detail", route_detail}};
    entry["request"] = {{"method", "GET"}, {"path", cfg.webhook_path}, {"query", query}};
    entry["expectBody"] = echo_plain;
    entry["ok"] = crypto_ok && route_ok;
    all_ok = all_ok && crypto_ok && route_ok;
    results.push_back(std::move(entry));
  }
  if (results.empty()) {
    return make_error(ErrorKind::NotFound, "no account \"" + std::string(account_id) + "\" under channels.wecom");
  }
  ordered_json out = {{"ok", all_ok}, {"accounts", std::move(results)}};
  return out.dump();
}

Result<std::string> Instance::pairing_list_json(std::string_view account_id) {
  ordered_json requests = ordered_json::array();
  bool found = false;
  for (const auto& account : accounts_) {
    const auto& cfg = *account->config;
    if (!account_id.empty() && cfg.id != account_id) continue;
    found = true;
    auto pending = access_.pending(cfg.id);
    if (!pending) return pending.error();
    for (const auto& r : *pending) {
      requests.push_back({{"accountId", cfg.id},
                          {"code", r.code},
                          {"userId", r.user_id},
                          {"createdAt", r.created_ms},
                          {"expiresAt", r.created_ms + policy::kPairingTtlMs}});
    }
  }
  if (!found) return make_error(ErrorKind::NotFound, "no account \"" + std::string(account_id) + "\" under channels.wecom");
  return ordered_json({{"channel", "wecom"}, {"requests", std::move(requests)}}).dump();
}

Result<std::string> Instance::pairing_approve(std::string_view account_id, std::string_view code) {
  for (const auto& account : accounts_) {
    const auto& cfg = *account->config;
    if (!account_id.empty() && cfg.id != account_id) continue;
    auto user = access_.approve(cfg.id, code);
    if (user) {
      log_line(host_, LogLevel::Info, cfg.id, "pairing approved: " + *user + " may now talk to the agent");
      return ordered_json({{"accountId", cfg.id}, {"userId", *user}}).dump();
    }
    if (user.error().kind != ErrorKind::NotFound) {
      log_line(host_, LogLevel::Error, cfg.id, "pairing approval failed: " + user.error().detail);
      return user.error();
    }
  }
  return make_error(ErrorKind::NotFound, "no pending WeCom pairing request with code " + std::string(code) +
                                             " (codes expire after 1 hour; list them with `pairing list wecom`)");
}

// ----------------------------------------------------------------------------------------------
// User messages: lanes, media, dispatch

Instance::Account* Instance::find_account(std::string_view account_id) {
  for (auto& account : accounts_) {
    if (account->config->id == account_id) return account.get();
  }
  return nullptr;
}

void Instance::accept_user_message(Account& account, const message::Message& msg, const std::string& stream_id) {
  const auto& cfg = *account.config;
  account.messages.fetch_add(1, std::memory_order_relaxed);
  auto job = std::make_shared<PendingMessage>();
  job->account_id = cfg.id;
  job->group = msg.chattype == message::ChatType::Group;
  job->target = peer_target(msg);
  job->sender_id = msg.from_userid;
  job->chat_id = msg.chatid;
  job->msgid = msg.msgid;
  job->msgtype = std::string(message::to_string(msg.type));
  job->text = job->group ? policy::strip_leading_mention(msg.text) : msg.text;
  job->quote_text = msg.quote_text;
  job->stream_id = stream_id;
  job->response_url = msg.response_url;
  job->aibot_id = msg.aibotid;
  job->media = msg.media;
  // WeCom's in-flight limit is per user (in groups too); the lane also keeps the user's order.
  job->lane = cfg.id + '\x1f' + msg.from_userid;
  const bool downloads = !job->media.empty() && host_.can_fetch();
  job->downloads_pending = downloads ? job->media.size() : 0;
  job->stored.assign(job->media.size(), std::string());
  {
    std::lock_guard lock(jobs_mutex_);
    pending_[stream_id] = job;
  }
  lanes_.arrive(job->lane, stream_id, /*ready=*/!downloads, static_cast<std::size_t>(cfg.max_in_flight_per_user));
  if (const std::size_t ahead = lanes_.in_flight(job->lane); ahead >= static_cast<std::size_t>(cfg.max_in_flight_per_user)) {
    log_line(host_, LogLevel::Info, cfg.id,
             "msgid=" + msg.msgid + " waits: " + std::to_string(ahead) + " earlier messages of " + msg.from_userid +
                 " are still being answered (maxInFlightPerUser " + std::to_string(cfg.max_in_flight_per_user) + ")");
  }
  // Downloads start at once, whatever the lane says: WeCom's media urls expire after ~5 minutes.
  if (downloads) start_downloads(account, job);
  pump(job->lane);
}

void Instance::start_downloads(Account& account, const std::shared_ptr<PendingMessage>& job) {
  const auto& cfg = *account.config;
  for (std::size_t i = 0; i < job->media.size(); ++i) {
    std::uint64_t id = 0;
    {
      std::lock_guard lock(jobs_mutex_);
      id = next_fetch_id_++;
      fetches_[id] = FetchContext{FetchContext::Kind::Media, cfg.id, job->stream_id, i, 0};
    }
    FetchRequest request;
    request.id = id;
    request.account_id = cfg.id;
    request.method = "GET";
    request.url = job->media[i].url;
    // The ciphertext is at most 31 bytes longer than the plaintext (pad-32).
    request.max_response_bytes = cfg.media_max_bytes + 32;
    request.timeout_ms = static_cast<std::uint32_t>(cfg.media_timeout_seconds) * 1000;
    if (!host_.fetch(request)) {
      FetchContext context;
      {
        std::lock_guard lock(jobs_mutex_);
        auto it = fetches_.find(id);
        if (it == fetches_.end()) continue;  // answered already
        context = it->second;
        fetches_.erase(it);
      }
      media_done(context, FetchOutcome::Failed, 0, {}, "the host could not start the download");
    }
  }
}

void Instance::media_done(const FetchContext& context, FetchOutcome outcome, int http_status, std::string_view body,
                          std::string_view error_text) {
  Account* account = find_account(context.account_id);
  std::shared_ptr<PendingMessage> job;
  {
    std::lock_guard lock(jobs_mutex_);
    auto it = pending_.find(context.stream_id);
    if (it != pending_.end()) job = it->second;
  }
  if (!job || !account) return;  // the stream ended meanwhile (expired): nothing to do
  const auto& cfg = *account->config;
  const auto& item = job->media[context.media_index];
  const std::string what = item.kind == "image" ? "image" : "file";
  std::string user_reason;  // empty: success
  std::string log_reason;
  std::string stored_json;
  if (outcome == FetchOutcome::TooLarge) {
    user_reason = "it is larger than " + human_bytes(cfg.media_max_bytes);
    log_reason = "larger than mediaMaxBytes " + std::to_string(cfg.media_max_bytes);
  } else if (outcome == FetchOutcome::Timeout) {
    user_reason = "the download timed out";
    log_reason = "download timed out after " + std::to_string(cfg.media_timeout_seconds) + "s (mediaTimeoutSeconds)";
  } else if (outcome != FetchOutcome::Ok) {
    user_reason = "the download failed";
    log_reason = "download failed: " + checks::printable(error_text, 200);
  } else if (http_status != 200) {
    user_reason = "the download failed";
    log_reason = "download answered HTTP " + std::to_string(http_status) + " (media urls expire ~5 minutes after the message)";
  } else if (body.size() > cfg.media_max_bytes + 32) {
    user_reason = "it is larger than " + human_bytes(cfg.media_max_bytes);
    log_reason = "larger than mediaMaxBytes " + std::to_string(cfg.media_max_bytes);
  } else {
    auto plain = account->crypto.decrypt_media(body);
    if (!plain) {
      user_reason = "it could not be decrypted";
      log_reason = "decrypt failed: " + plain.error().describe() + " (is encodingAESKey the bot's current key?)";
    } else if (plain->size() > cfg.media_max_bytes) {
      user_reason = "it is larger than " + human_bytes(cfg.media_max_bytes);
      log_reason = "larger than mediaMaxBytes " + std::to_string(cfg.media_max_bytes);
    } else {
      std::optional<media::FileType> type;
      if (item.kind == "image") type = media::sniff_image(*plain);
      else type = media::sniff_file(*plain);
      if (!type) {
        user_reason = "it is not a valid image";
        log_reason = "decrypted bytes are not an image (no JPEG/PNG/GIF/BMP/WEBP signature)";
      } else {
        const std::filesystem::path dir = media_dir_of(cfg);
        const std::string name = job->stream_id + "-" + std::to_string(context.media_index + 1) + "." + type->extension;
        auto path = media::store_file(dir, name, *plain);
        if (!path) {
          user_reason = "it could not be stored";
          log_reason = path.error().describe();
        } else {
          stored_json = ordered_json({{"kind", item.kind},
                                      {"path", path->string()},
                                      {"mime", type->mime},
                                      {"bytes", plain->size()}})
                            .dump();
          log_line(host_, LogLevel::Debug, cfg.id,
                   "msgid=" + job->msgid + ": " + what + " " + std::to_string(context.media_index + 1) + " stored (" +
                       type->mime + ", " + std::to_string(plain->size()) + " bytes)");
        }
      }
    }
  }
  bool complete = false;
  {
    std::lock_guard lock(jobs_mutex_);
    if (user_reason.empty()) job->stored[context.media_index] = std::move(stored_json);
    else if (job->failure.empty()) job->failure = "⚠️ Could not receive your " + what + ": " + user_reason + ". Please send it again.";
    complete = job->downloads_pending > 0 && --job->downloads_pending == 0;
  }
  if (!user_reason.empty()) {
    log_line(host_, LogLevel::Warn, cfg.id,
             "msgid=" + job->msgid + ": " + what + " " + std::to_string(context.media_index + 1) + " not received: " +
                 log_reason + "; the user is told");
  }
  if (complete) {
    lanes_.mark_ready(job->stream_id);
    pump(job->lane);
  }
}

void Instance::pump(const std::string& lane) {
  std::lock_guard order(pump_mutex_);
  while (auto stream_id = lanes_.take_next(lane)) {
    std::shared_ptr<PendingMessage> job;
    {
      std::lock_guard lock(jobs_mutex_);
      auto it = pending_.find(*stream_id);
      if (it != pending_.end()) {
        job = it->second;
        pending_.erase(it);
      }
    }
    if (job) dispatch_now(*job);  // may end the stream and pump again (recursively, in order)
    else lanes_.release(*stream_id);  // its stream ended while it waited
  }
}

void Instance::dispatch_now(PendingMessage& job) {
  if (!job.failure.empty()) {
    // A media message whose download failed never reaches the agent; its user reads why.
    finish(job.stream_id, stream::FinishKind::Failed, job.failure);
    return;
  }
  std::string media_json;
  if (job.media.empty()) {
    media_json = "[]";
  } else if (!host_.can_fetch()) {
    media_json = media_urls_json(job.media);
  } else {
    media_json = "[";
    for (std::size_t i = 0; i < job.stored.size(); ++i) media_json += (i ? "," : "") + job.stored[i];
    media_json += "]";
  }
  InboundMessage inbound;
  inbound.account_id = job.account_id;
  inbound.peer_kind = job.group ? PeerKind::Group : PeerKind::Direct;
  inbound.target = job.target;
  inbound.sender_id = job.sender_id;
  inbound.chat_id = job.chat_id;
  inbound.message_id = job.msgid;
  inbound.msgtype = job.msgtype;
  inbound.text = job.text;
  inbound.quote_text = job.quote_text;
  inbound.stream_id = job.stream_id;
  inbound.response_url = job.response_url;
  inbound.aibot_id = job.aibot_id;
  inbound.media_json = media_json;
  log_line(host_, LogLevel::Debug, job.account_id,
           "inbound " + job.msgtype + " msgid=" + job.msgid + " " + job.target + " stream=" + job.stream_id);
  if (!host_.dispatch(inbound)) {
    log_line(host_, LogLevel::Error, job.account_id,
             "host refused to dispatch msgid=" + job.msgid + "; the user is told to retry");
    finish(job.stream_id, stream::FinishKind::Failed, kDispatchRefusedText);
  }
}

// The stream is over for the agent (finished, failed, or expired): its lane slot frees up and
// the user's next waiting message may go.
void Instance::stream_ended(std::string_view stream_id) {
  {
    std::lock_guard lock(jobs_mutex_);
    pending_.erase(std::string(stream_id));
  }
  const std::string lane = lanes_.release(stream_id);
  if (!lane.empty()) pump(lane);
}

// ----------------------------------------------------------------------------------------------
// Long answers: response_url

void Instance::deliver_remainder(const stream::Remainder& remainder) {
  std::string text = remainder.text;
  if (remainder.interrupted) {
    if (text.empty()) return;  // nothing unseen: the user saw all there was
    text += "\n\n(the answer was interrupted)";
  } else if (text.empty()) {
    text = "(end of the answer)";  // the stream promised a continuation: keep the promise
  }
  const std::size_t answer_bytes = remainder.text.size();
  if (remainder.response_url.empty() || !host_.can_fetch()) {
    log_line(host_, LogLevel::Warn, remainder.account_id,
             "stream " + remainder.stream_id + ": " + std::to_string(answer_bytes) +
                 " bytes of the answer were not delivered: " +
                 (remainder.response_url.empty() ? "the message carried no response_url"
                                                 : "the host has no HTTP client (ABI 1.1 callback_fetch)"));
    return;
  }
  if (text.size() > kMaxResponseUrlBytes) {
    const std::string marker_template = "\n\n…(" + std::to_string(text.size()) + " bytes not delivered: WeCom limit)";
    const std::size_t keep = stream::utf8_safe_prefix_length(text, kMaxResponseUrlBytes - marker_template.size());
    const std::size_t lost = text.size() - keep;
    text.resize(keep);
    text += "\n\n…(" + std::to_string(lost) + " bytes not delivered: WeCom limit)";
    log_line(host_, LogLevel::Warn, remainder.account_id,
             "stream " + remainder.stream_id + ": answer longer than stream + response_url can carry; " +
                 std::to_string(lost) + " bytes were not delivered");
  }
  const std::string body =
      ordered_json({{"msgtype", "markdown"}, {"markdown", {{"content", text}}}}).dump(-1, ' ', false,
                                                                                  nlohmann::json::error_handler_t::replace);
  std::uint64_t id = 0;
  {
    std::lock_guard lock(jobs_mutex_);
    id = next_fetch_id_++;
    fetches_[id] = FetchContext{FetchContext::Kind::ResponseUrl, remainder.account_id, remainder.stream_id, 0, answer_bytes};
  }
  FetchRequest request;
  request.id = id;
  request.account_id = remainder.account_id;
  request.method = "POST";
  request.url = remainder.response_url;
  request.content_type = "application/json";
  request.body = body;
  request.max_response_bytes = kResponseUrlMaxAnswerBytes;
  request.timeout_ms = kResponseUrlTimeoutMs;
  log_line(host_, LogLevel::Info, remainder.account_id,
           "stream " + remainder.stream_id + ": sending " + std::to_string(answer_bytes) +
               " bytes of the answer through response_url" + (remainder.interrupted ? " (agent did not finish)" : ""));
  if (!host_.fetch(request)) {
    {
      std::lock_guard lock(jobs_mutex_);
      fetches_.erase(id);
    }
    log_line(host_, LogLevel::Warn, remainder.account_id,
             "stream " + remainder.stream_id + ": " + std::to_string(answer_bytes) +
                 " bytes of the answer were not delivered: the host could not start the response_url request");
  }
}

void Instance::response_url_done(const FetchContext& context, FetchOutcome outcome, int http_status,
                                 std::string_view body, std::string_view error_text) {
  std::string problem;
  if (outcome == FetchOutcome::Timeout) problem = "timed out";
  else if (outcome != FetchOutcome::Ok && outcome != FetchOutcome::TooLarge) problem = "failed: " + checks::printable(error_text, 200);
  else if (http_status != 200) problem = "answered HTTP " + std::to_string(http_status);
  else {
    // WeCom answers {"errcode":0,"errmsg":"ok"}; anything else names the problem (e.g. the url
    // was already used, or expired after an hour).
    auto doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (doc.is_object() && doc.contains("errcode") && doc["errcode"].is_number_integer() && doc["errcode"].get<long long>() != 0) {
      problem = "errcode " + std::to_string(doc["errcode"].get<long long>());
      if (doc.contains("errmsg") && doc["errmsg"].is_string()) problem += " " + checks::printable(doc["errmsg"].get<std::string>(), 200);
    }
  }
  if (problem.empty()) {
    log_line(host_, LogLevel::Info, context.account_id,
             "stream " + context.stream_id + ": response_url delivered " + std::to_string(context.bytes) + " bytes");
  } else {
    log_line(host_, LogLevel::Warn, context.account_id,
             "stream " + context.stream_id + ": response_url " + problem + "; " + std::to_string(context.bytes) +
                 " bytes of the answer were not delivered (response_url is single-use, no retry)");
  }
}

Status Instance::fetch_done(std::uint64_t request_id, FetchOutcome outcome, int http_status, std::string_view body,
                            std::string_view error_text) {
  FetchContext context;
  {
    std::lock_guard lock(jobs_mutex_);
    auto it = fetches_.find(request_id);
    if (it == fetches_.end()) return make_error(ErrorKind::NotFound, "unknown fetch request id " + std::to_string(request_id));
    context = std::move(it->second);
    fetches_.erase(it);
  }
  if (context.kind == FetchContext::Kind::Media) media_done(context, outcome, http_status, body, error_text);
  else response_url_done(context, outcome, http_status, body, error_text);
  return Ok{};
}

// ----------------------------------------------------------------------------------------------
// Events

void Instance::surface_event(Account& account, const message::Message& msg) {
  const auto& cfg = *account.config;
  {
    std::lock_guard lock(jobs_mutex_);
    const std::int64_t now = now_ms();
    auto [it, inserted] = seen_events_.try_emplace(cfg.id + '\x1f' + msg.msgid, now + kEventDedupeMs);
    if (!inserted && it->second > now) return;  // a WeCom retry: surfaced already
    it->second = now + kEventDedupeMs;
  }
  log_line(host_, LogLevel::Info, cfg.id,
           "event " + msg.event_type.substr(0, 64) + " from " + msg.from_userid + " msgid=" + msg.msgid +
               " (passed to the host, no reply)");
  Event event;
  event.account_id = cfg.id;
  event.event_type = msg.event_type;
  event.sender_id = msg.from_userid;
  event.chat_id = msg.chatid;
  event.message_id = msg.msgid;
  event.event_json = msg.event_json.empty() ? std::string_view("{}") : std::string_view(msg.event_json);
  host_.event(event);
}

void Instance::tick() {
  const std::int64_t now = now_ms();
  auto swept = streams_.sweep(now);
  for (const auto& notice : swept.notices) {
    const Account* account = find_account(notice.account_id);
    switch (notice.kind) {
      case stream::SweepNotice::Kind::RefreshMissing:
        log_line(host_, LogLevel::Warn, notice.account_id,
                  "stream refresh not received: stream " + notice.stream_id + " answered its first reply " +
                      std::to_string(account ? account->config->refresh_warn_seconds : 0) +
                      "s ago and WeCom has not refreshed it since — msgtype=stream callbacks are not reaching "
                      "this webhook (proxy, TLS, 502, timeouts); the user only sees the placeholder");
        break;
      case stream::SweepNotice::Kind::Expired:
        if (notice.bytes > 0) {
          log_line(host_, LogLevel::Warn, notice.account_id,
                    "stream " + notice.stream_id + " expired before the agent finished (" +
                        std::to_string(notice.bytes) + " bytes were never shown in the stream)");
        }
        break;
      case stream::SweepNotice::Kind::HandedOff:
        log_line(host_, LogLevel::Info, notice.account_id,
                  "stream " + notice.stream_id + " is near WeCom's 6-minute refresh window: finished with " +
                      std::to_string(notice.bytes) + " bytes and a continuation note; the rest goes through response_url");
        break;
    }
  }
  for (const auto& remainder : swept.remainders) deliver_remainder(remainder);
  // Release every closed stream before pumping, so a lane never hands the host a message whose
  // stream has just expired with it.
  std::vector<std::string> lanes_to_pump;
  for (const auto& stream_id : swept.closed) {
    {
      std::lock_guard lock(jobs_mutex_);
      pending_.erase(stream_id);
    }
    if (std::string lane = lanes_.release(stream_id); !lane.empty()) lanes_to_pump.push_back(std::move(lane));
  }
  for (const auto& lane : lanes_to_pump) pump(lane);
  {
    std::lock_guard lock(jobs_mutex_);
    for (auto it = seen_events_.begin(); it != seen_events_.end();) {
      it = it->second <= now ? seen_events_.erase(it) : std::next(it);
    }
  }
  std::int64_t due = next_media_sweep_ms_.load();
  if (now >= due && host_.can_fetch() && next_media_sweep_ms_.compare_exchange_strong(due, now + kMediaSweepIntervalMs)) {
    for (const auto& account : accounts_) media::remove_older_than(media_dir_of(*account->config), kMediaRetention);
  }
}

}  // namespace cwc::core
