// wecom-sim's library: plays WeCom's side of the intelligent-bot protocol — builds callback
// plaintexts, encrypts and signs them like WeCom, posts them, verifies and decrypts the replies,
// follows stream refreshes, and serves encrypted media on loopback.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"
#include "crypto/crypto.h"
#include "envelope/envelope.h"

namespace cwc::sim {

struct Credentials {
  std::string token;
  std::string aes_key;  // the 43-character EncodingAESKey
  std::string receive_id;
};

// Parts of a bot message the caller chooses; the rest is filled like WeCom does.
struct Sender {
  std::string user_id;
  std::string chat_id;  // non-empty: a group chat
  std::string aibot_id = "AIBOT-SIM";
  std::string response_url = "http://127.0.0.1:9/response_url-not-served";
};

std::string random_msgid();
std::string random_nonce();
std::string now_timestamp();

std::string build_text(const Sender& sender, std::string_view msgid, std::string_view text);
std::string build_event(const Sender& sender, std::string_view msgid, std::string_view event_type);
std::string build_media(const Sender& sender, std::string_view msgid, std::string_view kind, std::string_view url);
std::string build_refresh(const Sender& sender, std::string_view msgid, std::string_view stream_id);

// Splits "http://host:port/path?x" into "http://host:port" and "/path".
struct ParsedUrl {
  std::string origin;
  std::string path;
};
Result<ParsedUrl> parse_url(std::string_view url);

// Encrypt + sign: what WeCom puts on the wire.
struct SignedCallback {
  std::string encrypt;
  std::string signature;
  std::string timestamp;
  std::string nonce;
  std::string query() const;  // msg_signature=...&timestamp=...&nonce=...
  std::string body(envelope::Format format) const;
};

class Wecom {
 public:
  static Result<Wecom> create(Credentials credentials);

  // random_prefix: 16 bytes; nullopt → secure random.
  SignedCallback seal(std::string_view plaintext, std::string timestamp, std::string nonce,
                      const std::optional<std::array<std::uint8_t, 16>>& random_prefix = std::nullopt) const;

  // Checks the reply signature and nonce, then decrypts. Errors name the failing stage.
  Result<std::string> open_reply(std::string_view body, std::string_view expected_nonce) const;

  // Verify + decrypt an arbitrary signed ciphertext (the `decrypt` command).
  Result<std::string> open(std::string_view signature, std::string_view timestamp, std::string_view nonce,
                           std::string_view encrypt) const;

  // Media: AES-256-CBC with the account key, 32-byte padding, no framing.
  std::string encrypt_media(std::string_view bytes) const;

  const Credentials& credentials() const { return credentials_; }

 private:
  Wecom(Credentials credentials, crypto::MessageCrypto crypto)
      : credentials_(std::move(credentials)), crypto_(std::move(crypto)) {}
  Credentials credentials_;
  crypto::MessageCrypto crypto_;
};

struct HttpResult {
  int status = 0;       // 0: no HTTP answer at all
  std::string body;
  std::string content_type;
  std::string error;    // transport error, when status == 0
};

// The outcome of posting one callback.
struct Exchange {
  HttpResult http;
  std::string plaintext;  // the decrypted reply ("" for an empty reply)
};

class Client {
 public:
  Client(Wecom wecom, ParsedUrl url, int timeout_seconds = 10)
      : wecom_(std::move(wecom)), url_(std::move(url)), timeout_seconds_(timeout_seconds) {}

  // VerifyURL like WeCom: random echostr; success = 200 and exactly the plaintext.
  Result<std::string> verify_url();

  // POST one callback; a non-200 answer or a reply that fails verification is an error whose
  // detail says what the user should check.
  Result<Exchange> post(std::string_view plaintext, envelope::Format format = envelope::Format::Json);

  // Refreshes `stream_id` every `interval_ms` until finish or `timeout_ms`; `on_update` sees
  // every new content. Returns the final content.
  Result<std::string> follow(const Sender& sender, std::string_view stream_id, int interval_ms, int timeout_ms,
                             envelope::Format format,
                             const std::function<void(const std::string&)>& on_update = {},
                             std::vector<std::string>* images = nullptr);

  const Wecom& wecom() const { return wecom_; }

 private:
  HttpResult request(const std::string& method, const std::string& target, const std::string& body,
                     const std::string& content_type);

  Wecom wecom_;
  ParsedUrl url_;
  int timeout_seconds_;
};

// Serves encrypted bytes on 127.0.0.1 (a random port) while it lives, as WeCom's media CDN would.
class MediaServer {
 public:
  explicit MediaServer(std::string encrypted_bytes);
  ~MediaServer();
  MediaServer(const MediaServer&) = delete;
  MediaServer& operator=(const MediaServer&) = delete;

  std::string url() const;  // http://127.0.0.1:<port>/media/<name>
  int downloads() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// WeCom's response_url on 127.0.0.1 while it lives: accepts JSON POSTs like WeCom (the first one
// answers {"errcode":0}; a second POST to the same url answers an errcode, since WeCom's url is
// single-use) and keeps what arrived.
class ResponseUrlServer {
 public:
  ResponseUrlServer();
  ~ResponseUrlServer();
  ResponseUrlServer(const ResponseUrlServer&) = delete;
  ResponseUrlServer& operator=(const ResponseUrlServer&) = delete;

  std::string url() const;  // http://127.0.0.1:<port>/cgi-bin/aibot/response?response_code=<random>
  // The first POST body, waiting up to `timeout_ms` for it; nullopt if none came.
  std::optional<std::string> wait_for_post(int timeout_ms) const;
  int posts() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cwc::sim
