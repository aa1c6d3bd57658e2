#include "sim.h"

#include <vector>

#include <mutex>

#include <condition_variable>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <thread>

namespace cwc::sim {
namespace {

using nlohmann::ordered_json;

std::string random_hex(std::size_t bytes) {
  std::string raw(bytes, '\0');
  crypto::openssl_random(reinterpret_cast<std::uint8_t*>(raw.data()), raw.size());
  return crypto::to_hex(raw);
}

ordered_json base_message(const Sender& sender, std::string_view msgid, std::string_view msgtype) {
  ordered_json m;
  m["msgid"] = msgid;
  m["aibotid"] = sender.aibot_id;
  if (!sender.chat_id.empty()) m["chatid"] = sender.chat_id;
  m["chattype"] = sender.chat_id.empty() ? "single" : "group";
  m["from"] = {{"userid", sender.user_id}};
  m["response_url"] = sender.response_url;
  m["msgtype"] = msgtype;
  return m;
}

// What a failing answer most likely means, in the words of the channel docs' troubleshooting.
std::string explain_status(const HttpResult& r) {
  std::string first_line = r.body.substr(0, r.body.find('\n')).substr(0, 200);
  switch (r.status) {
    case 400:
      if (r.body.find("decrypt failed") != std::string::npos) {
        return "400 decrypt failed: the gateway's encodingAESKey differs from --aes-key (" + first_line + ")";
      }
      if (r.body.find("receiveId mismatch") != std::string::npos) {
        return "400 receiveId mismatch: the gateway's receiveId differs from --receive-id (" + first_line + ")";
      }
      if (r.body.find("missing query params") != std::string::npos) {
        return "400 missing query params: a proxy dropped the query string (" + first_line + ")";
      }
      return "400: " + first_line;
    case 401:
      return "401 invalid signature: wrong token, or a proxy rewrote the query string (" + first_line + ")";
    case 404:
      return "404: nothing serves this path — check the URL and the account's webhookPath";
    case 405:
      return "405: the server or a proxy does not accept this method on the webhook path";
    case 413:
      return "413: body too large for the gateway's maxBodyBytes";
    case 502:
    case 503:
    case 504:
      return std::to_string(r.status) + ": the proxy could not reach the gateway (" + first_line + ")";
    default:
      return "HTTP " + std::to_string(r.status) + ": " + first_line;
  }
}

}  // namespace

std::string random_msgid() { return "SIM" + random_hex(12); }
std::string random_nonce() { return std::to_string(10000000 + std::stoul(random_hex(3), nullptr, 16) % 89999999); }
std::string now_timestamp() {
  using namespace std::chrono;
  return std::to_string(duration_cast<seconds>(system_clock::now().time_since_epoch()).count());
}

std::string build_text(const Sender& sender, std::string_view msgid, std::string_view text) {
  auto m = base_message(sender, msgid, "text");
  m["text"] = {{"content", text}};
  return m.dump();
}

std::string build_event(const Sender& sender, std::string_view msgid, std::string_view event_type) {
  auto m = base_message(sender, msgid, "event");
  m["event"] = {{"eventtype", event_type}};
  return m.dump();
}

std::string build_media(const Sender& sender, std::string_view msgid, std::string_view kind, std::string_view url) {
  auto m = base_message(sender, msgid, kind);
  m[std::string(kind)] = {{"url", url}};
  return m.dump();
}

std::string build_refresh(const Sender& sender, std::string_view msgid, std::string_view stream_id) {
  auto m = base_message(sender, msgid, "stream");
  m.erase("response_url");
  m["stream"] = {{"id", stream_id}};
  return m.dump();
}

Result<ParsedUrl> parse_url(std::string_view url) {
  const std::size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) {
    return make_error(ErrorKind::BadQuery, "URL must start with http:// or https:// (got \"" + std::string(url) + "\")");
  }
  const std::string_view scheme = url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") {
    return make_error(ErrorKind::BadQuery, "URL scheme must be http or https");
  }
  const std::size_t path_start = url.find('/', scheme_end + 3);
  ParsedUrl parsed;
  parsed.origin = std::string(url.substr(0, path_start));
  parsed.path = path_start == std::string_view::npos ? "/" : std::string(url.substr(path_start));
  if (auto q = parsed.path.find('?'); q != std::string::npos) parsed.path.resize(q);
  if (parsed.origin.size() <= scheme_end + 3) return make_error(ErrorKind::BadQuery, "URL has no host");
  return parsed;
}

std::string SignedCallback::query() const {
  return "msg_signature=" + signature + "&timestamp=" + timestamp + "&nonce=" + envelope::percent_encode(nonce);
}

std::string SignedCallback::body(envelope::Format format) const {
  if (format == envelope::Format::Json) return ordered_json({{"encrypt", encrypt}}).dump();
  return "<xml><ToUserName><![CDATA[]]></ToUserName><Encrypt><![CDATA[" + encrypt +
         "]]></Encrypt><AgentID><![CDATA[]]></AgentID></xml>";
}

Result<Wecom> Wecom::create(Credentials credentials) {
  if (credentials.token.empty()) return make_error(ErrorKind::Config, "--token is required");
  auto key = crypto::AesKey::from_encoding_aes_key(credentials.aes_key);
  if (!key) return make_error(ErrorKind::Config, "--aes-key " + key.error().detail);
  crypto::MessageCrypto message_crypto(*key, credentials.receive_id);
  return Wecom(std::move(credentials), std::move(message_crypto));
}

SignedCallback Wecom::seal(std::string_view plaintext, std::string timestamp, std::string nonce,
                           const std::optional<std::array<std::uint8_t, 16>>& random_prefix) const {
  std::array<std::uint8_t, 16> prefix{};
  if (random_prefix) prefix = *random_prefix;
  else crypto::openssl_random(prefix.data(), prefix.size());
  SignedCallback out;
  out.encrypt = crypto_.encrypt(plaintext, prefix);
  out.signature = crypto::compute_signature(credentials_.token, timestamp, nonce, out.encrypt);
  out.timestamp = std::move(timestamp);
  out.nonce = std::move(nonce);
  return out;
}

Result<std::string> Wecom::open(std::string_view signature, std::string_view timestamp, std::string_view nonce,
                                std::string_view encrypt) const {
  if (!crypto::signature_matches(signature, credentials_.token, timestamp, nonce, encrypt)) {
    return make_error(ErrorKind::InvalidSignature, "signature does not match --token");
  }
  return crypto_.decrypt(encrypt);
}

Result<std::string> Wecom::open_reply(std::string_view body, std::string_view expected_nonce) const {
  auto env = envelope::parse_reply_envelope(body);
  if (!env) return make_error(ErrorKind::BadBody, "reply is not a WeCom reply envelope: " + env.error().detail);
  if (env->nonce != expected_nonce) {
    return make_error(ErrorKind::InvalidSignature,
                      "reply nonce \"" + env->nonce + "\" is not the request's \"" + std::string(expected_nonce) + "\"");
  }
  auto plain = open(env->signature, env->timestamp, env->nonce, env->encrypt);
  if (!plain) return make_error(plain.error().kind, "reply: " + plain.error().describe());
  return plain;
}

std::string Wecom::encrypt_media(std::string_view bytes) const {
  return crypto::aes_cbc_encrypt_raw(crypto_.key(), crypto::pad32(bytes));
}

HttpResult Client::request(const std::string& method, const std::string& target, const std::string& body,
                           const std::string& content_type) {
  httplib::Client http(url_.origin);
  http.set_connection_timeout(timeout_seconds_, 0);
  http.set_read_timeout(timeout_seconds_, 0);
  http.set_write_timeout(timeout_seconds_, 0);
  http.enable_server_certificate_verification(true);
  HttpResult result;
  httplib::Result response = method == "GET" ? http.Get(target) : http.Post(target, body, content_type);
  if (!response) {
    result.error = "no HTTP answer from " + url_.origin + ": " + httplib::to_string(response.error());
    return result;
  }
  result.status = response->status;
  result.body = response->body;
  result.content_type = response->get_header_value("Content-Type");
  return result;
}

Result<std::string> Client::verify_url() {
  const std::string echo = random_hex(8);
  auto sealed = wecom_.seal(echo, now_timestamp(), random_nonce());
  const std::string target = url_.path + "?msg_signature=" + sealed.signature + "&timestamp=" + sealed.timestamp +
                             "&nonce=" + sealed.nonce + "&echostr=" + envelope::percent_encode(sealed.encrypt);
  HttpResult r = request("GET", target, "", "");
  if (r.status == 0) return make_error(ErrorKind::Internal, r.error);
  if (r.status != 200) return make_error(ErrorKind::Internal, "VerifyURL failed: " + explain_status(r));
  if (r.body == echo) return echo;
  std::string what;
  if (r.body.find("<html") != std::string::npos || r.body.find("<!doctype") != std::string::npos ||
      r.body.find("<!DOCTYPE") != std::string::npos) {
    what = "got HTML: the URL is answered by something else (the gateway's Control UI, or a proxy page)";
  } else if (r.body == "\"" + echo + "\"") {
    what = "the plaintext is quoted; WeCom needs it bare";
  } else if (r.body == echo + "\n" || r.body == echo + "\r\n") {
    what = "the plaintext has a trailing newline; WeCom needs it bare";
  } else if (r.body.rfind("\xEF\xBB\xBF", 0) == 0) {
    what = "the plaintext starts with a UTF-8 BOM";
  } else {
    what = "expected exactly \"" + echo + "\", got \"" + r.body.substr(0, 120) + "\"";
  }
  return make_error(ErrorKind::Internal, "VerifyURL answered 200 but " + what);
}

Result<Exchange> Client::post(std::string_view plaintext, envelope::Format format) {
  auto sealed = wecom_.seal(plaintext, now_timestamp(), random_nonce());
  Exchange exchange;
  exchange.http = request("POST", url_.path + "?" + sealed.query(), sealed.body(format),
                          format == envelope::Format::Json ? "application/json" : "application/xml");
  if (exchange.http.status == 0) return make_error(ErrorKind::Internal, exchange.http.error);
  if (exchange.http.status != 200) return make_error(ErrorKind::Internal, explain_status(exchange.http));
  if (exchange.http.body.empty()) return exchange;
  auto plain = wecom_.open_reply(exchange.http.body, sealed.nonce);
  if (!plain) return plain.error();
  exchange.plaintext = std::move(*plain);
  return exchange;
}

// The images of a finishing stream reply, checked like WeCom does: base64 decodes, md5 matches.
Status check_msg_items(const nlohmann::json& stream, std::vector<std::string>* images) {
  if (!stream.contains("msg_item")) return Ok{};
  const auto& items = stream["msg_item"];
  if (!items.is_array() || items.size() > 10) return make_error(ErrorKind::Internal, "msg_item must be an array of at most 10 items");
  for (const auto& item : items) {
    if (!item.is_object() || item.value("msgtype", "") != "image" || !item.contains("image")) {
      return make_error(ErrorKind::Internal, "msg_item entry is not an image: " + item.dump().substr(0, 120));
    }
    auto bytes = crypto::base64_decode(item["image"].value("base64", ""));
    if (!bytes) return make_error(ErrorKind::Internal, "msg_item image base64 does not decode");
    if (crypto::md5_hex(*bytes) != item["image"].value("md5", "")) {
      return make_error(ErrorKind::Internal, "msg_item image md5 does not match its bytes");
    }
    if (images) images->push_back(std::move(*bytes));
  }
  return Ok{};
}

Result<std::string> Client::follow(const Sender& sender, std::string_view stream_id, int interval_ms, int timeout_ms,
                                   envelope::Format format, const std::function<void(const std::string&)>& on_update,
                                   std::vector<std::string>* images) {
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + std::chrono::milliseconds(timeout_ms);
  std::string last;
  bool first = true;
  while (true) {
    if (!first) std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
    first = false;
    auto exchange = post(build_refresh(sender, random_msgid(), stream_id), format);
    if (!exchange) return make_error(ErrorKind::Internal, "stream refresh failed: " + exchange.error().describe());
    if (exchange->plaintext.empty()) return make_error(ErrorKind::Internal, "stream refresh got an empty reply");
    auto reply = nlohmann::json::parse(exchange->plaintext, nullptr, false);
    if (!reply.is_object() || reply.value("msgtype", "") != "stream" || !reply.contains("stream")) {
      return make_error(ErrorKind::Internal, "stream refresh answered something else: " + exchange->plaintext.substr(0, 200));
    }
    const auto& stream = reply["stream"];
    const std::string content = stream.value("content", "");
    if (content != last) {
      last = content;
      if (on_update) on_update(content);
    }
    if (stream.value("finish", false)) {
      auto checked = check_msg_items(stream, images);
      if (!checked) return checked.error();
      return content;
    }
    if (clock::now() >= deadline) {
      return make_error(ErrorKind::Internal,
                        "stream did not finish within " + std::to_string(timeout_ms / 1000) + "s (last content: \"" +
                            last.substr(0, 80) + "\")");
    }
  }
}

struct MediaServer::Impl {
  httplib::Server server;
  std::thread thread;
  int port = 0;
  std::string name;
  std::atomic<int> downloads{0};
};

MediaServer::MediaServer(std::string encrypted_bytes) : impl_(std::make_unique<Impl>()) {
  impl_->name = random_hex(8);
  auto bytes = std::make_shared<std::string>(std::move(encrypted_bytes));
  Impl* impl = impl_.get();
  impl_->server.Get("/media/" + impl_->name, [bytes, impl](const httplib::Request&, httplib::Response& res) {
    ++impl->downloads;
    res.set_content(*bytes, "application/octet-stream");
  });
  impl_->port = impl_->server.bind_to_any_port("127.0.0.1");
  impl_->thread = std::thread([impl] { impl->server.listen_after_bind(); });
  // httplib 0.11 has no wait_until_ready(): poll briefly so url() is served when returned. The
  // socket is already bound, so a client connecting early would only queue, never fail.
  for (int i = 0; i < 200 && !impl_->server.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

MediaServer::~MediaServer() {
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

std::string MediaServer::url() const {
  return "http://127.0.0.1:" + std::to_string(impl_->port) + "/media/" + impl_->name;
}

int MediaServer::downloads() const { return impl_->downloads.load(); }

struct ResponseUrlServer::Impl {
  httplib::Server server;
  std::thread thread;
  int port = 0;
  std::string code;
  mutable std::mutex mutex;
  mutable std::condition_variable arrived;
  std::vector<std::string> bodies;
};

ResponseUrlServer::ResponseUrlServer() : impl_(std::make_unique<Impl>()) {
  impl_->code = random_hex(16);
  Impl* impl = impl_.get();
  impl_->server.Post("/cgi-bin/aibot/response", [impl](const httplib::Request& req, httplib::Response& res) {
    if (req.get_param_value("response_code") != impl->code) {
      res.set_content(R"({"errcode":40001,"errmsg":"invalid response_code"})", "application/json");
      return;
    }
    std::size_t count = 0;
    {
      std::lock_guard lock(impl->mutex);
      impl->bodies.push_back(req.body);
      count = impl->bodies.size();
    }
    impl->arrived.notify_all();
    res.set_content(count == 1 ? R"({"errcode":0,"errmsg":"ok"})" : R"({"errcode":600039,"errmsg":"response_url used"})",
                    "application/json");
  });
  impl_->port = impl_->server.bind_to_any_port("127.0.0.1");
  impl_->thread = std::thread([impl] { impl->server.listen_after_bind(); });
  for (int i = 0; i < 200 && !impl_->server.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

ResponseUrlServer::~ResponseUrlServer() {
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

std::string ResponseUrlServer::url() const {
  return "http://127.0.0.1:" + std::to_string(impl_->port) + "/cgi-bin/aibot/response?response_code=" + impl_->code;
}

std::optional<std::string> ResponseUrlServer::wait_for_post(int timeout_ms) const {
  std::unique_lock lock(impl_->mutex);
  if (!impl_->arrived.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return !impl_->bodies.empty(); })) {
    return std::nullopt;
  }
  return impl_->bodies.front();
}

int ResponseUrlServer::posts() const {
  std::lock_guard lock(impl_->mutex);
  return static_cast<int>(impl_->bodies.size());
}

}  // namespace cwc::sim
