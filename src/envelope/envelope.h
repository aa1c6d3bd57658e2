// The outer layer of a WeCom webhook: the query string (msg_signature, timestamp, nonce,
// echostr) and the body envelope that carries the ciphertext, as JSON {"encrypt": ...} or XML
// <xml><Encrypt>...</Encrypt></xml>; and the signed reply envelope in the same format.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace cwc::envelope {

// Percent-decodes a query component. '+' stays '+': none of WeCom's parameters contains a space,
// but base64 `echostr` does contain '+', which proxies and SDKs sometimes leave unencoded.
std::optional<std::string> percent_decode(std::string_view text);

// Percent-encodes everything but RFC 3986 unreserved characters (base64's + / = included).
std::string percent_encode(std::string_view text);

struct QueryParam {
  std::string name;
  std::string value;
};

// Splits and decodes "a=1&b=2". Errors: BadQuery for undecodable components.
Result<std::vector<QueryParam>> parse_query(std::string_view query);

// The signed parameters of a webhook request.
struct SignedQuery {
  std::string msg_signature;
  std::string timestamp;
  std::string nonce;
  std::string echostr;  // GET (VerifyURL) only
};

// Extracts msg_signature, timestamp, nonce (and echostr when `want_echostr`). Errors:
// MissingQueryParams naming every missing one ("msg_signature, nonce"), BadQuery for a duplicate
// parameter, a non-numeric timestamp or an oversized value.
Result<SignedQuery> parse_signed_query(std::string_view query, bool want_echostr);

enum class Format { Json, Xml };

// The ciphertext of a request. WeCom's usual body, exactly {"encrypt":"<base64>"}, is not
// copied: encrypt() is then a view of the body, which must outlive the envelope.
class RequestEnvelope {
 public:
  static RequestEnvelope viewing(Format format, std::string_view in_body) { return {format, in_body, {}}; }
  static RequestEnvelope owning(Format format, std::string encrypt) { return {format, {}, std::move(encrypt)}; }

  Format format;
  std::string_view encrypt() const { return in_body_.data() != nullptr ? in_body_ : std::string_view(owned_); }

 private:
  RequestEnvelope(Format f, std::string_view in_body, std::string owned)
      : format(f), in_body_(in_body), owned_(std::move(owned)) {}
  std::string_view in_body_;  // set when the ciphertext is read in place
  std::string owned_;         // otherwise (parsed JSON or XML)
};

// Detects the format from the body (first non-blank byte '{' or '<') and extracts the
// ciphertext. XML with a DOCTYPE is rejected (no DTDs, no entity tricks).
Result<RequestEnvelope> parse_request_envelope(std::string_view body);

// The signed reply: {"encrypt","msgsignature","timestamp","nonce"} or the XML equivalent.
std::string build_reply_envelope(Format format, std::string_view encrypt,
                                 std::string_view signature, std::string_view timestamp,
                                 std::string_view nonce);

// The JSON reply envelope written in one buffer around a ciphertext that is appended in place
// (MessageCrypto::encrypt_append), then signed where it lies: the ciphertext is neither copied
// nor checked for escaping, as build_reply_envelope does with a finished one. The result is byte
// for byte build_reply_envelope(Format::Json, ...) of the same fields.
class JsonReplyWriter {
 public:
  // `encrypt_size`: the ciphertext's length (MessageCrypto::encrypted_size), for one allocation.
  explicit JsonReplyWriter(std::size_t encrypt_size);

  // Append the ciphertext here. Base64 only (what encrypt_append writes): it is not escaped.
  std::string& encrypt_target() { return body_; }
  // The ciphertext appended so far: what the reply's signature covers.
  std::string_view encrypt() const { return std::string_view(body_).substr(kEncryptStart); }
  // Closes the envelope with the signature over encrypt(), the timestamp and the nonce.
  std::string finish(std::string_view signature, std::string_view timestamp, std::string_view nonce) &&;

 private:
  static constexpr std::size_t kEncryptStart = 12;  // {"encrypt":"
  std::string body_;
};

struct ReplyEnvelope {
  Format format;
  std::string encrypt;
  std::string signature;
  std::string timestamp;
  std::string nonce;
};

// Parses a reply envelope (what WeCom, the simulator and tests receive).
Result<ReplyEnvelope> parse_reply_envelope(std::string_view body);

}  // namespace cwc::envelope
