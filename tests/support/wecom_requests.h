// Builds WeCom-signed requests (as WeCom would send them) and opens signed replies, for tests.
#pragma once

#include <array>
#include <cctype>
#include <string>

#include "crypto/crypto.h"
#include "envelope/envelope.h"

namespace cwc::testing {

inline constexpr const char* kToken = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo";
inline constexpr const char* kAesKey = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt";

using envelope::percent_encode;

class WecomPeer {
 public:
  explicit WecomPeer(std::string token = kToken, std::string aes_key = kAesKey, std::string receive_id = "")
      : token_(std::move(token)),
        crypto_(*crypto::AesKey::from_encoding_aes_key(aes_key), std::move(receive_id)) {}

  struct Signed {
    std::string query;
    std::string body;
  };

  // A POST callback carrying `plaintext` in a JSON (or XML) envelope.
  Signed callback(std::string_view plaintext, envelope::Format format = envelope::Format::Json,
                  std::string nonce = "8427661", std::string timestamp = "1732500000") const {
    std::array<std::uint8_t, 16> prefix{};
    prefix.fill(7);
    const std::string encrypt = crypto_.encrypt(plaintext, prefix);
    const std::string signature = crypto::compute_signature(token_, timestamp, nonce, encrypt);
    Signed out;
    out.query = "msg_signature=" + signature + "&timestamp=" + timestamp + "&nonce=" + nonce;
    out.body = format == envelope::Format::Json
                   ? "{\"encrypt\":\"" + encrypt + "\"}"
                   : "<xml><ToUserName><![CDATA[]]></ToUserName><Encrypt><![CDATA[" + encrypt +
                         "]]></Encrypt><AgentID><![CDATA[]]></AgentID></xml>";
    return out;
  }

  // A GET VerifyURL query for `plaintext`.
  std::string verify_query(std::string_view plaintext, std::string nonce = "47744683",
                           std::string timestamp = "1476416373") const {
    std::array<std::uint8_t, 16> prefix{};
    const std::string echostr = crypto_.encrypt(plaintext, prefix);
    const std::string signature = crypto::compute_signature(token_, timestamp, nonce, echostr);
    return "msg_signature=" + signature + "&timestamp=" + timestamp + "&nonce=" + nonce +
           "&echostr=" + percent_encode(echostr);
  }

  // Verifies and decrypts a reply body; "" with `error` set on failure.
  std::string open_reply(std::string_view body, std::string_view expected_nonce, std::string* error = nullptr) const {
    auto env = envelope::parse_reply_envelope(body);
    if (!env) {
      if (error) *error = env.error().describe();
      return {};
    }
    if (env->nonce != expected_nonce) {
      if (error) *error = "nonce mismatch";
      return {};
    }
    if (!crypto::signature_matches(env->signature, token_, env->timestamp, env->nonce, env->encrypt)) {
      if (error) *error = "bad reply signature";
      return {};
    }
    auto plain = crypto_.decrypt(env->encrypt);
    if (!plain) {
      if (error) *error = plain.error().describe();
      return {};
    }
    return *plain;
  }

 private:
  std::string token_;
  crypto::MessageCrypto crypto_;
};

}  // namespace cwc::testing
