#include "core/instance.h"

#include <nlohmann/json.hpp>

#include "common/text_checks.h"

#include <array>

namespace cwc::core {
namespace {

using nlohmann::ordered_json;

std::string peer_target(const message::Message& msg) {
  if (msg.chattype == message::ChatType::Group && !msg.chatid.empty()) return "wecom:group:" + msg.chatid;
  return "wecom:" + msg.from_userid;
}

std::string media_json_of(const message::Message& msg) {
  ordered_json items = ordered_json::array();
  for (const auto& item : msg.media) items.push_back({{"kind", item.kind}, {"url", item.url}});
  return items.dump();
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
  if (!crypto::signature_matches(query->msg_signature, cfg.token, query->timestamp, query->nonce, query->echostr)) {
    return fail(&account, request,
                make_error(ErrorKind::InvalidSignature, "VerifyURL signature does not match the configured token"));
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
  if (!crypto::signature_matches(query->msg_signature, cfg.token, query->timestamp, query->nonce, env->encrypt)) {
    return fail(&account, request,
                make_error(ErrorKind::InvalidSignature, "callback signature does not match the configured token"));
  }
  auto plain = account.crypto.decrypt(env->encrypt);
  if (!plain) return fail(&account, request, plain.error());
  auto msg = message::parse_message(*plain);
  if (!msg) return fail(&account, request, msg.error());

  account.last_inbound_ms.store(now_ms(), std::memory_order_relaxed);
  auto reply = handle_message(account, *msg);
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
        return message::build_stream_reply({msg.stream_id, true, ""});
      }
      return message::build_stream_reply({view->id, view->finish, view->content});
    }
    case MsgType::Event: {
      if (msg.event_type == "enter_chat") {
        log_line(host_, LogLevel::Debug, cfg.id, "enter_chat from " + msg.from_userid);
        if (!cfg.welcome_text || cfg.welcome_text->empty()) return std::string();
        return message::build_text_reply(*cfg.welcome_text);
      }
      log_line(host_, LogLevel::Info, cfg.id, "event " + msg.event_type.substr(0, 64) + " from " + msg.from_userid + " (no reply)");
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
  auto opened = streams_.open(cfg.id, msg.msgid, now, std::int64_t{cfg.stream_ttl_seconds} * 1000,
                              std::int64_t{cfg.refresh_warn_seconds} * 1000);
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
    account.messages.fetch_add(1, std::memory_order_relaxed);
    const bool group = msg.chattype == message::ChatType::Group;
    const std::string target = peer_target(msg);
    const std::string media = media_json_of(msg);
    const std::string text = group ? policy::strip_leading_mention(msg.text) : msg.text;
    const std::string_view msgtype = message::to_string(msg.type);
    InboundMessage inbound;
    inbound.account_id = cfg.id;
    inbound.peer_kind = group ? PeerKind::Group : PeerKind::Direct;
    inbound.target = target;
    inbound.sender_id = msg.from_userid;
    inbound.chat_id = msg.chatid;
    inbound.message_id = msg.msgid;
    inbound.msgtype = msgtype;
    inbound.text = text;
    inbound.quote_text = msg.quote_text;
    inbound.stream_id = opened->stream_id;
    inbound.response_url = msg.response_url;
    inbound.aibot_id = msg.aibotid;
    inbound.media_json = media;
    log_line(host_, LogLevel::Debug, cfg.id,
              "inbound " + std::string(msgtype) + " msgid=" + msg.msgid + " " + target + " stream=" + opened->stream_id);
    if (!host_.dispatch(inbound)) {
      log_line(host_, LogLevel::Error, cfg.id, "host refused to dispatch msgid=" + msg.msgid + "; the user is told to retry");
      streams_.finish(opened->stream_id, stream::FinishKind::Failed, kDispatchRefusedText);
    }
  }
  auto view = streams_.view(cfg.id, opened->stream_id, /*is_refresh=*/false, now);
  if (!view) return make_error(ErrorKind::Internal, "stream vanished while answering");
  std::string content = view->content.empty() && !view->finish ? cfg.stream_placeholder : view->content;
  return message::build_stream_reply({view->id, view->finish, std::move(content)});
}

std::string Instance::seal_reply(Account& account, envelope::Format format, std::string_view plaintext,
                                 std::string_view nonce) {
  std::array<std::uint8_t, crypto::kRandomPrefixBytes> prefix{};
  if (!host_.random(prefix.data(), prefix.size())) return {};
  const std::string encrypted = account.crypto.encrypt(plaintext, prefix);
  const std::string timestamp = std::to_string(now_ms() / 1000);
  const std::string signature = crypto::compute_signature(account.config->token, timestamp, nonce, encrypted);
  return envelope::build_reply_envelope(format, encrypted, signature, timestamp, nonce);
}

stream::UpdateResult Instance::push(std::string_view stream_id, std::string_view text, stream::PushMode mode) {
  return streams_.push(stream_id, text, mode);
}

stream::UpdateResult Instance::finish(std::string_view stream_id, stream::FinishKind kind, std::string_view text) {
  return streams_.finish(stream_id, kind, text);
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
    for (const auto& r : access_.pending(cfg.id)) {
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
    if (auto user = access_.approve(cfg.id, code)) {
      log_line(host_, LogLevel::Info, cfg.id, "pairing approved: " + *user + " may now talk to the agent");
      return ordered_json({{"accountId", cfg.id}, {"userId", *user}}).dump();
    }
  }
  return make_error(ErrorKind::NotFound, "no pending WeCom pairing request with code " + std::string(code) +
                                             " (codes expire after 1 hour; list them with `pairing list wecom`)");
}

void Instance::tick() {
  for (const auto& notice : streams_.sweep(now_ms())) {
    const Account* account = nullptr;
    for (const auto& a : accounts_) {
      if (a->config->id == notice.account_id) account = a.get();
    }
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
                        std::to_string(notice.bytes) + " bytes were never refreshed by WeCom)");
        }
        break;
      case stream::SweepNotice::Kind::OverflowPending:
        log_line(host_, LogLevel::Warn, notice.account_id,
                  "stream " + notice.stream_id + ": answer exceeds WeCom's 20480-byte stream limit by " +
                      std::to_string(notice.bytes) + " bytes; the overflow is kept, not shown in the stream");
        break;
    }
  }
}

}  // namespace cwc::core
