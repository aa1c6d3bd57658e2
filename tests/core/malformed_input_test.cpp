// Malformed and hostile requests against core::Instance::handle, one row per class of bad input.
// Every row checks the whole contract of a rejection: the status, the documented phrase at the
// start of the body, exactly one log line that names the cause, nothing dispatched to the host
// and no stream opened. (Unknown msgtypes, non-message events and refreshes of streams we do not
// know are not errors: 200, empty or finish:true, still exactly one log line and no stream.)
#include <gtest/gtest.h>

#include <array>
#include <cctype>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/instance.h"
#include "crypto/crypto.h"
#include "support/fake_host.h"
#include "support/test_data.h"
#include "support/wecom_requests.h"

namespace cwc::core {
namespace {

using cwc::testing::FakeHost;
using cwc::testing::kAesKey;
using cwc::testing::kToken;
using cwc::testing::percent_encode;
using cwc::testing::WecomPeer;
using nlohmann::json;

constexpr const char* kCorpId = "ww1436e0e65a779aee";
constexpr const char* kOtherKey = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
constexpr const char* kTs = "1732500000";
constexpr const char* kNonce = "8427661";

// Two accounts, so a refresh can name another account's stream.
std::string two_account_config() {
  const std::string key = kAesKey;
  return R"({"accounts":{"default":{"webhookPath":"/wecom","token":")" + std::string(kToken) +
         R"(","encodingAESKey":")" + key + R"(","receiveId":"","dm":{"policy":"open","allowFrom":["*"]}},
            "team2":{"webhookPath":"/wecom-team2","token":"TOKEN_B","encodingAESKey":")" + key +
         R"(","receiveId":"","dm":{"policy":"open","allowFrom":["*"]}}}})";
}

struct Request {
  std::string method = "POST";
  std::string path = "/wecom";
  std::string query;
  std::string body;
};

// The message fields every valid user message carries; cases remove or break one of them.
json base_message() {
  return {{"msgid", "m1"}, {"aibotid", "BOT"}, {"chattype", "single"}, {"from", {{"userid", "zhangsan"}}},
          {"response_url", "https://example.invalid/r"}, {"msgtype", "text"}, {"text", {{"content", "hi"}}}};
}

std::string query_for(const std::string& encrypt, const std::string& token = kToken) {
  return "msg_signature=" + crypto::compute_signature(token, kTs, kNonce, encrypt) + "&timestamp=" + kTs +
         "&nonce=" + kNonce;
}

// A correctly signed POST whose "encrypt" is exactly `encrypt` (any text).
Request signed_encrypt(const std::string& encrypt) {
  return {"POST", "/wecom", query_for(encrypt), json({{"encrypt", encrypt}}).dump()};
}

// A correctly signed POST of `padded` (already padded, any bytes) encrypted with the account key.
Request signed_padded_plaintext(const std::string& padded) {
  const auto key = *crypto::AesKey::from_encoding_aes_key(kAesKey);
  return signed_encrypt(crypto::base64_encode(crypto::aes_cbc_encrypt_raw(key, padded)));
}

// random16 ‖ be32(length) ‖ message ‖ receiveId, unpadded.
std::string frame(const std::string& message, std::uint32_t length, const std::string& receive_id = "") {
  std::string out(16, 'r');
  for (int shift : {24, 16, 8, 0}) out += static_cast<char>((length >> shift) & 0xff);
  return out + message + receive_id;
}
std::string frame(const std::string& message) { return frame(message, static_cast<std::uint32_t>(message.size())); }

// A correctly signed and encrypted POST carrying `plaintext` (JSON envelope unless xml).
Request signed_message(const std::string& plaintext, envelope::Format format = envelope::Format::Json) {
  auto s = WecomPeer().callback(plaintext, format, kNonce, kTs);
  return {"POST", "/wecom", s.query, s.body};
}
Request signed_message(const json& msg) { return signed_message(msg.dump()); }

json without(json msg, const std::string& key) {
  msg.erase(key);
  return msg;
}
json with(json msg, const json::json_pointer& ptr, const json& value) {
  msg[ptr] = value;
  return msg;
}

std::string deep_arrays(std::size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

struct Case {
  std::string name;
  // Builds the request; may first drive the instance (e.g. open a stream on another account).
  std::function<Request(Instance&, FakeHost&)> make;
  int status;
  std::string phrase;      // the body starts with it; "" = empty body; "finish" = a finish:true stream reply
  std::string log_needle;  // the one new log line contains it (defaults to `phrase`)
  LogLevel log_level = LogLevel::Warn;
};

Case reject(std::string name, std::function<Request()> make, int status, std::string phrase, std::string needle = "") {
  return {std::move(name), [make](Instance&, FakeHost&) { return make(); }, status, phrase,
          needle.empty() ? phrase : std::move(needle), LogLevel::Warn};
}

std::vector<Case> cases() {
  const std::string sig_ok_query = query_for("abc");
  const std::string good_body = json({{"encrypt", "abc"}}).dump();
  std::vector<Case> c;

  // --- routing and method
  c.push_back(reject("unknown path", [] { return Request{"POST", "/other", "", ""}; }, 404, "not found"));
  c.push_back(reject("path with a longer prefix", [] { return Request{"POST", "/wecomx", "", ""}; }, 404, "not found"));
  c.push_back(reject("path in another case", [] { return Request{"POST", "/WECOM", "", ""}; }, 404, "not found"));
  c.push_back(reject("path with control characters", [] { return Request{"POST", "/we\r\ncom\x01", "", ""}; }, 404,
                     "not found", "/we\\x0d\\x0acom\\x01"));
  c.push_back(reject("empty path", [] { return Request{"GET", "", "", ""}; }, 404, "not found"));
  c.push_back(reject("PUT", [] { return Request{"PUT", "/wecom", "", ""}; }, 405, "method not allowed"));
  c.push_back(reject("DELETE", [] { return Request{"DELETE", "/wecom", "", ""}; }, 405, "method not allowed"));
  c.push_back(reject("HEAD", [] { return Request{"HEAD", "/wecom", "", ""}; }, 405, "method not allowed"));
  c.push_back(reject("lowercase post", [] { return Request{"post", "/wecom", "", ""}; }, 405, "method not allowed"));
  c.push_back(reject("empty method", [] { return Request{"", "/wecom", "", ""}; }, 405, "method not allowed"));
  c.push_back(reject("binary method", [] { return Request{"\xff\xfe\n", "/wecom", "", ""}; }, 405, "method not allowed",
                     "\\xff\\xfe\\x0a /wecom"));

  // --- query parameters
  c.push_back(reject("GET without query (a browser)", [] { return Request{"GET", "/wecom", "", ""}; }, 400,
                     "missing query params", "msg_signature, timestamp, nonce, echostr"));
  c.push_back(reject("POST without query", [] { return Request{"POST", "/wecom", "", "{}"}; }, 400,
                     "missing query params", "msg_signature, timestamp, nonce"));
  c.push_back(reject("GET without echostr", [] { return Request{"GET", "/wecom", "msg_signature=a&timestamp=1&nonce=2", ""}; },
                     400, "missing query params", "echostr"));
  c.push_back(reject("missing nonce", [] { return Request{"POST", "/wecom", "msg_signature=a&timestamp=1", "{}"}; }, 400,
                     "missing query params", "nonce"));
  c.push_back(reject("empty msg_signature", [] { return Request{"POST", "/wecom", "msg_signature=&timestamp=1&nonce=2", "{}"}; },
                     400, "missing query params", "msg_signature"));
  c.push_back(reject("duplicate msg_signature",
                     [] { return Request{"POST", "/wecom", "msg_signature=a&msg_signature=a&timestamp=1&nonce=2", "{}"}; }, 400,
                     "missing query params", "msg_signature given twice"));
  c.push_back(reject("duplicate timestamp", [] { return Request{"POST", "/wecom", "msg_signature=a&timestamp=1&timestamp=2&nonce=2", "{}"}; },
                     400, "missing query params", "timestamp given twice"));
  c.push_back(reject("oversized nonce", [] {
                       return Request{"POST", "/wecom", "msg_signature=a&timestamp=1&nonce=" + std::string(5000, 'n'), "{}"};
                     }, 400, "missing query params", "nonce longer than 4096 bytes"));
  c.push_back(reject("oversized echostr", [] {
                       return Request{"GET", "/wecom", "msg_signature=a&timestamp=1&nonce=2&echostr=" + std::string(8000, 'A'), ""};
                     }, 400, "missing query params", "echostr longer than 4096 bytes"));
  c.push_back(reject("non-numeric timestamp", [] { return Request{"POST", "/wecom", "msg_signature=a&timestamp=12a&nonce=2", "{}"}; },
                     400, "missing query params", "timestamp is not a decimal number"));
  c.push_back(reject("negative timestamp", [] { return Request{"POST", "/wecom", "msg_signature=a&timestamp=-1&nonce=2", "{}"}; },
                     400, "missing query params", "timestamp is not a decimal number"));
  c.push_back(reject("25-digit timestamp", [] {
                       return Request{"POST", "/wecom", "msg_signature=a&timestamp=" + std::string(25, '9') + "&nonce=2", "{}"};
                     }, 400, "missing query params", "timestamp is not a decimal number"));
  c.push_back(reject("bad percent-encoding", [] { return Request{"POST", "/wecom", "msg_signature=a%zz&timestamp=1&nonce=2", "{}"}; },
                     400, "missing query params", "bad percent-encoding in parameter msg_signature"));
  c.push_back(reject("truncated percent-encoding", [] { return Request{"POST", "/wecom", "msg_signature=a&timestamp=1&nonce=2%4", "{}"}; },
                     400, "missing query params", "bad percent-encoding in parameter nonce"));
  c.push_back(reject("bad percent-encoding in a name", [] { return Request{"POST", "/wecom", "%G0=1&msg_signature=a&timestamp=1&nonce=2", "{}"}; },
                     400, "missing query params", "bad percent-encoding in a parameter name"));
  c.push_back(reject("control bytes in a badly encoded param name", [] {
                       return Request{"POST", "/wecom", "x%0Ay=%zz&msg_signature=a&timestamp=1&nonce=2", "{}"};
                     }, 400, "missing query params", "parameter x\\x0ay"));

  // --- signature
  c.push_back(reject("wrong signature", [good_body] {
                       return Request{"POST", "/wecom", "msg_signature=" + std::string(40, '0') + "&timestamp=" + kTs + "&nonce=" + kNonce, good_body};
                     }, 401, "invalid signature"));
  c.push_back(reject("short signature", [sig_ok_query, good_body] {
                       std::string q = sig_ok_query;
                       q.erase(q.find('&') - 1, 1);  // 39 hex chars
                       return Request{"POST", "/wecom", q, good_body};
                     }, 401, "invalid signature"));
  c.push_back(reject("uppercase signature", [good_body] {
                       std::string sig = crypto::compute_signature(kToken, kTs, kNonce, "abc");
                       for (auto& ch : sig) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
                       return Request{"POST", "/wecom", "msg_signature=" + sig + "&timestamp=" + kTs + "&nonce=" + kNonce, good_body};
                     }, 401, "invalid signature"));
  c.push_back(reject("signature with a trailing space", [good_body] {
                       return Request{"POST", "/wecom", "msg_signature=" + crypto::compute_signature(kToken, kTs, kNonce, "abc") +
                                                            "%20&timestamp=" + kTs + "&nonce=" + kNonce, good_body};
                     }, 401, "invalid signature"));
  c.push_back(reject("signature over another nonce", [good_body] {
                       return Request{"POST", "/wecom", "msg_signature=" + crypto::compute_signature(kToken, kTs, kNonce, "abc") +
                                                            "&timestamp=" + kTs + "&nonce=1", good_body};
                     }, 401, "invalid signature"));
  c.push_back(reject("signature with another token", [good_body] {
                       return Request{"POST", "/wecom", query_for("abc", "TOKEN_B"), good_body};
                     }, 401, "invalid signature"));
  c.push_back(reject("GET signature over another echostr", [] {
                       const std::string echostr = crypto::base64_encode(std::string(32, 'e'));
                       return Request{"GET", "/wecom", "msg_signature=" + crypto::compute_signature(kToken, kTs, kNonce, "other") +
                                                           "&timestamp=" + kTs + "&nonce=" + kNonce + "&echostr=" + percent_encode(echostr), ""};
                     }, 401, "invalid signature"));

  // --- body envelope
  c.push_back(reject("empty body", [sig_ok_query] { return Request{"POST", "/wecom", sig_ok_query, ""}; }, 400, "invalid body", "empty body"));
  c.push_back(reject("blank body", [sig_ok_query] { return Request{"POST", "/wecom", sig_ok_query, " \r\n\t"}; }, 400, "invalid body"));
  c.push_back(reject("not JSON or XML", [sig_ok_query] { return Request{"POST", "/wecom", sig_ok_query, "encrypt=abc"}; }, 400,
                     "invalid body", "neither JSON nor XML"));
  c.push_back(reject("truncated JSON", [sig_ok_query] { return Request{"POST", "/wecom", sig_ok_query, R"({"encrypt":"ab)"}; }, 400,
                     "invalid body", "not valid JSON"));
  c.push_back(reject("JSON array body", [sig_ok_query] { return Request{"POST", "/wecom", sig_ok_query, R"([{"encrypt":"abc"}])"}; }, 400,
                     "invalid body", "neither JSON nor XML"));
  c.push_back(reject("JSON without encrypt", [sig_ok_query] { return Request{"POST", "/wecom", sig_ok_query, R"({"encrypted":"abc"})"}; },
                     400, "invalid body", "no \"encrypt\" field"));
  c.push_back(reject("encrypt is a number", [sig_ok_query] { return Request{"POST", "/wecom", sig_ok_query, R"({"encrypt":12})"}; }, 400,
                     "invalid body", "not a non-empty string"));
  c.push_back(reject("encrypt is empty", [sig_ok_query] { return Request{"POST", "/wecom", sig_ok_query, R"({"encrypt":""})"}; }, 400,
                     "invalid body", "not a non-empty string"));
  c.push_back(reject("JSON with invalid UTF-8", [sig_ok_query] { return Request{"POST", "/wecom", sig_ok_query, "{\"encrypt\":\"a\xff\"}"}; },
                     400, "invalid body", "not valid JSON"));
  c.push_back(reject("100000 nested arrays", [sig_ok_query] {
                       return Request{"POST", "/wecom", sig_ok_query, "{\"x\":" + deep_arrays(100000) + ",\"encrypt\":\"abc\"}"};
                     }, 400, "invalid body", "nests deeper than 16 levels"));
  c.push_back(reject("100000 unclosed objects", [sig_ok_query] {
                       std::string body;
                       for (int i = 0; i < 100000; ++i) body += "{\"a\":";
                       return Request{"POST", "/wecom", sig_ok_query, body};
                     }, 400, "invalid body", "nests deeper than 16 levels"));
  c.push_back(reject("XML with a DTD and entities", [sig_ok_query] {
                       return Request{"POST", "/wecom", sig_ok_query,
                                      R"(<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><xml><Encrypt>&b;</Encrypt></xml>)"};
                     }, 400, "invalid body", "DTD"));
  c.push_back(reject("XML with a lowercase doctype", [sig_ok_query] {
                       return Request{"POST", "/wecom", sig_ok_query, R"(<!doctype xml SYSTEM "file:///etc/passwd"><xml><Encrypt>abc</Encrypt></xml>)"};
                     }, 400, "invalid body", "DTD"));
  c.push_back(reject("XML without Encrypt", [sig_ok_query] { return Request{"POST", "/wecom", sig_ok_query, "<xml><ToUserName>x</ToUserName></xml>"}; },
                     400, "invalid body", "no <Encrypt>"));
  c.push_back(reject("malformed XML", [sig_ok_query] { return Request{"POST", "/wecom", sig_ok_query, "<xml><Encrypt>abc</Encrypt"}; }, 400,
                     "invalid body", "not valid XML"));
  c.push_back(reject("body over the cap", [sig_ok_query] {
                       return Request{"POST", "/wecom", sig_ok_query, std::string(1024 * 1024 + 1, ' ')};
                     }, 413, "body too large", "1048577 bytes > maxBodyBytes 1048576"));

  // --- ciphertext (signature correct, so these reach the crypto)
  c.push_back(reject("encrypt not base64", [] { return signed_encrypt("!!!!not-base64!!"); }, 400, "decrypt failed", "not valid base64"));
  c.push_back(reject("base64 length not a multiple of 4", [] { return signed_encrypt("QUJDRA"); }, 400, "decrypt failed", "not valid base64"));
  c.push_back(reject("base64 with whitespace", [] { return signed_encrypt("QUJ DRA="); }, 400, "decrypt failed", "not valid base64"));
  c.push_back(reject("ciphertext not a multiple of 16", [] { return signed_encrypt(crypto::base64_encode(std::string(20, 'x'))); }, 400,
                     "decrypt failed", "not a positive multiple of 16"));
  c.push_back(reject("ciphertext a multiple of 16, not of 32", [] {
                       return signed_padded_plaintext(frame("hi") + std::string(10, 'x') + std::string(16, '\x10'));  // 48 bytes
                     }, 400, "decrypt failed", "not a multiple of 32"));
  c.push_back(reject("huge ciphertext under the cap", [] { return signed_encrypt(std::string(900 * 1024, 'A')); }, 400,
                     "decrypt failed"));
  c.push_back(reject("pad value 0", [] { return signed_padded_plaintext(frame("hello") + std::string(6, '\x07') + std::string(1, '\0')); },
                     400, "decrypt failed", "pad value 0 outside 1..32"));
  c.push_back(reject("pad value 33", [] { return signed_padded_plaintext(frame("hello") + std::string(7, '!')); }, 400,
                     "decrypt failed", "pad value 33 outside 1..32"));
  c.push_back(reject("pad value 255", [] { return signed_padded_plaintext(frame("hello") + std::string(7, '\xff')); }, 400,
                     "decrypt failed", "pad value 255 outside 1..32"));
  c.push_back(reject("inconsistent pad bytes", [] {
                       return signed_padded_plaintext(frame("hello") + std::string(6, '\x07').insert(0, 1, '\x06'));
                     }, 400, "decrypt failed", "inconsistent padding"));
  c.push_back(reject("plaintext shorter than its header", [] { return signed_padded_plaintext(std::string(32, '\x20')); }, 400,
                     "decrypt failed", "shorter than its 20-byte header"));
  c.push_back(reject("length field beyond the buffer", [] {
                       return signed_padded_plaintext(crypto::pad32(frame("hello", 6)));
                     }, 400, "decrypt failed", "length field 6 exceeds the 5 bytes"));
  c.push_back(reject("length field 0xffffffff", [] {
                       return signed_padded_plaintext(crypto::pad32(frame("hello", 0xffffffffu)));
                     }, 400, "decrypt failed", "length field 4294967295"));
  c.push_back(reject("wrong key", [] {
                       auto s = WecomPeer(kToken, kOtherKey).callback(base_message().dump(), envelope::Format::Json, kNonce, kTs);
                       return Request{"POST", "/wecom", s.query, s.body};
                     }, 400, "decrypt failed"));
  c.push_back(reject("wrong receiveId", [] {
                       auto s = WecomPeer(kToken, kAesKey, kCorpId).callback(base_message().dump(), envelope::Format::Json, kNonce, kTs);
                       return Request{"POST", "/wecom", s.query, s.body};
                     }, 400, "receiveId mismatch", "receiveId of 18 chars"));
  c.push_back(reject("receiveId hidden in the length field slack", [] {
                       return signed_padded_plaintext(crypto::pad32(frame(base_message().dump() + "x", static_cast<std::uint32_t>(base_message().dump().size()))));
                     }, 400, "receiveId mismatch"));
  c.push_back(reject("GET echostr not base64", [] {
                       const std::string echostr = "not*base64";
                       return Request{"GET", "/wecom", "msg_signature=" + crypto::compute_signature(kToken, kTs, kNonce, echostr) +
                                                           "&timestamp=" + kTs + "&nonce=" + kNonce + "&echostr=" + echostr, ""};
                     }, 400, "decrypt failed", "not valid base64"));
  c.push_back(reject("GET echostr for another receiveId",
                     [] { return Request{"GET", "/wecom", WecomPeer(kToken, kAesKey, kCorpId).verify_query("123"), ""}; }, 400,
                     "receiveId mismatch"));

  // --- decrypted message
  c.push_back(reject("plaintext not JSON", [] { return signed_message(std::string("hello")); }, 400, "invalid message", "not valid JSON"));
  c.push_back(reject("official example's invalid JSON", [] {
                       auto v = cwc::testing::vector_named("official-json-example");
                       return signed_message(v["plaintext"].get<std::string>());
                     }, 400, "invalid message", "not valid JSON"));
  c.push_back(reject("empty plaintext", [] { return signed_message(std::string()); }, 400, "invalid message", "empty"));
  c.push_back(reject("plaintext is a JSON array", [] { return signed_message(std::string("[1,2]")); }, 400, "invalid message",
                     "not a JSON object"));
  c.push_back(reject("100000 nested arrays in the message", [] {
                       return signed_message(R"({"msgtype":"text","x":)" + deep_arrays(100000) + "}");
                     }, 400, "invalid message", "nests deeper than 32 levels"));
  c.push_back(reject("invalid UTF-8 in the text", [] {
                       return signed_message(std::string(R"({"msgid":"m1","from":{"userid":"u"},"msgtype":"text","text":{"content":"a)") +
                                             "\xC3\x28" + "\"}}");
                     }, 400, "invalid message", "not valid UTF-8 (byte"));
  c.push_back(reject("overlong UTF-8 in the text", [] {
                       return signed_message(std::string(R"({"msgid":"m1","from":{"userid":"u"},"msgtype":"text","text":{"content":")") +
                                             "\xC0\xAF" + "\"}}");
                     }, 400, "invalid message", "not valid UTF-8"));
  c.push_back(reject("UTF-8 surrogate in XML text", [] {
                       return signed_message(std::string("<xml><FromUserName>u</FromUserName><MsgType>text</MsgType>"
                                                         "<Content>&#xD800;</Content><MsgId>m</MsgId></xml>"));
                     }, 400, "invalid message", "text is not valid UTF-8"));
  c.push_back(reject("lone surrogate escape in JSON text", [] {
                       return signed_message(std::string(R"({"msgid":"m1","from":{"userid":"u"},"msgtype":"text","text":{"content":"\ud800"}})"));
                     }, 400, "invalid message", "not valid JSON"));
  c.push_back(reject("missing from.userid", [] { return signed_message(without(base_message(), "from")); }, 400, "invalid message",
                     "missing from.userid"));
  c.push_back(reject("from.userid not a string", [] { return signed_message(with(base_message(), "/from/userid"_json_pointer, json::object())); },
                     400, "invalid message", "from.userid is not a string"));
  c.push_back(reject("from.userid too long", [] { return signed_message(with(base_message(), "/from/userid"_json_pointer, std::string(600, 'u'))); },
                     400, "invalid message", "from.userid is too long"));
  c.push_back(reject("missing msgid", [] { return signed_message(without(base_message(), "msgid")); }, 400, "invalid message", "missing msgid"));
  c.push_back(reject("msgid too long", [] { return signed_message(with(base_message(), "/msgid"_json_pointer, std::string(600, 'm'))); }, 400,
                     "invalid message", "msgid is too long"));
  c.push_back(reject("missing msgtype", [] { return signed_message(without(base_message(), "msgtype")); }, 400, "invalid message",
                     "missing msgtype"));
  c.push_back(reject("text without its object", [] { return signed_message(without(base_message(), "text")); }, 400, "invalid message",
                     "without a \"text\" object"));
  c.push_back(reject("image without url", [] {
                       return signed_message(with(with(without(base_message(), "text"), "/msgtype"_json_pointer, "image"), "/image"_json_pointer,
                                                  json::object()));
                     }, 400, "invalid message", "image.url is missing"));
  c.push_back(reject("mixed items not an array", [] {
                       return signed_message(with(with(base_message(), "/msgtype"_json_pointer, "mixed"), "/mixed/msg_item"_json_pointer, "x"));
                     }, 400, "invalid message", "mixed.msg_item is not an array"));
  c.push_back(reject("stream refresh without id", [] {
                       return signed_message(with(with(base_message(), "/msgtype"_json_pointer, "stream"), "/stream"_json_pointer, json::object()));
                     }, 400, "invalid message", "stream.id is missing"));
  c.push_back(reject("event without eventtype", [] {
                       return signed_message(with(with(base_message(), "/msgtype"_json_pointer, "event"), "/event"_json_pointer, json::object()));
                     }, 400, "invalid message", "event.eventtype is missing"));
  c.push_back(reject("unknown chattype", [] { return signed_message(with(base_message(), "/chattype"_json_pointer, "channel")); }, 400,
                     "invalid message", "unknown chattype"));
  c.push_back(reject("content of the wrong type", [] { return signed_message(with(base_message(), "/text/content"_json_pointer, 5)); }, 400,
                     "invalid message", "text.content is not a string"));
  c.push_back(reject("XML message without MsgType", [] {
                       return signed_message(std::string("<xml><FromUserName>u</FromUserName><Content>x</Content></xml>"),
                                             envelope::Format::Xml);
                     }, 400, "invalid message", "missing MsgType"));
  c.push_back(reject("UTF-32-looking XML message", [] { return signed_message(std::string("<\0\0\0x\0\0\0", 8)); }, 400, "invalid message"));

  // --- not errors: answered 200 without a stream, one log line each
  c.push_back({"unknown msgtype", [](Instance&, FakeHost&) { return signed_message(with(base_message(), "/msgtype"_json_pointer, "location")); },
               200, "", "unsupported msgtype \"location\"", LogLevel::Warn});
  c.push_back({"template card event",
               [](Instance&, FakeHost&) {
                 return signed_message(with(with(base_message(), "/msgtype"_json_pointer, "event"), "/event"_json_pointer,
                                            {{"eventtype", "template_card_event"}}));
               },
               200, "", "event template_card_event", LogLevel::Info});
  c.push_back({"feedback event",
               [](Instance&, FakeHost&) {
                 return signed_message(with(with(base_message(), "/msgtype"_json_pointer, "event"), "/event"_json_pointer,
                                            {{"eventtype", "feedback_event"}}));
               },
               200, "", "event feedback_event", LogLevel::Info});
  c.push_back({"event type with a newline",
               [](Instance&, FakeHost&) {
                 return signed_message(with(with(base_message(), "/msgtype"_json_pointer, "event"), "/event"_json_pointer,
                                            {{"eventtype", "x\nwecom[default]: 200 forged"}}));
               },
               200, "", "event x\\x0awecom", LogLevel::Info});
  c.push_back({"refresh of an unknown stream",
               [](Instance&, FakeHost&) {
                 return signed_message(with(with(base_message(), "/msgtype"_json_pointer, "stream"), "/stream"_json_pointer, {{"id", "s-nope"}}));
               },
               200, "finish", "refresh for unknown or expired stream", LogLevel::Info});
  c.push_back({"refresh of another account's stream",
               [](Instance& instance, FakeHost& host) {
                 // team2 opens a stream; the same id refreshed on the default account is unknown there.
                 auto s = WecomPeer("TOKEN_B").callback(base_message().dump(), envelope::Format::Json, kNonce, kTs);
                 auto res = instance.handle({"POST", "/wecom-team2", s.query, "", s.body, ""});
                 EXPECT_EQ(res.status, 200);
                 EXPECT_EQ(host.dispatched.size(), 1u);
                 const std::string foreign = host.dispatched.at(0).stream_id;
                 return signed_message(with(with(base_message(), "/msgtype"_json_pointer, "stream"), "/stream"_json_pointer, {{"id", foreign}}));
               },
               200, "finish", "refresh for unknown or expired stream", LogLevel::Info});
  return c;
}

std::size_t streams_of(const Instance& instance) { return json::parse(instance.status_json())["streams"].get<std::size_t>(); }

TEST(MalformedInput, EveryClassIsRejectedPreciselyOnceWithoutSideEffects) {
  const auto all = cases();
  EXPECT_GE(all.size(), 50u);
  for (const auto& c : all) {
    SCOPED_TRACE(c.name);
    FakeHost host;
    auto created = Instance::create(two_account_config(), host);
    ASSERT_TRUE(created.ok()) << created.error().detail;
    Instance& instance = **created;
    const Request req = c.make(instance, host);
    const std::size_t logs_before = host.logs.size();
    const std::size_t dispatched_before = host.dispatched.size();
    const std::size_t streams_before = streams_of(instance);

    const HttpResponse res = instance.handle({req.method, req.path, req.query, "application/json", req.body, "203.0.113.9"});

    EXPECT_EQ(res.status, c.status) << res.body;
    if (c.phrase.empty()) {
      EXPECT_EQ(res.body, "");
    } else if (c.phrase == "finish") {
      std::string error;
      const std::string plain = WecomPeer().open_reply(res.body, kNonce, &error);
      ASSERT_TRUE(error.empty()) << error;
      const json reply = json::parse(plain);
      EXPECT_EQ(reply["msgtype"], "stream");
      EXPECT_EQ(reply["stream"]["finish"], true);
    } else {
      EXPECT_EQ(res.body.rfind(c.phrase, 0), 0u) << res.body;
      EXPECT_LE(res.body.size(), 512u) << "the error body must not echo the input";
      EXPECT_EQ(res.content_type, kContentTypeText);
    }
    ASSERT_EQ(host.logs.size(), logs_before + 1) << "exactly one log line per request";
    const auto& line = host.logs.back();
    EXPECT_NE(line.line.find(c.log_needle), std::string::npos) << line.line;
    if (c.status != 200) {
      EXPECT_NE(line.line.find(c.phrase), std::string::npos) << line.line;
      EXPECT_EQ(line.account_id, c.status == 404 ? "" : "default");
    }
    EXPECT_EQ(line.level, c.log_level);
    EXPECT_EQ(line.line.find('\n'), std::string::npos) << "one line, never two";
    EXPECT_EQ(line.line.find('\r'), std::string::npos);
    EXPECT_LE(line.line.size(), 2048u + 3);
    EXPECT_EQ(host.dispatched.size(), dispatched_before) << "nothing reaches the agent";
    EXPECT_EQ(streams_of(instance), streams_before) << "no stream is opened";
  }
}

// The names are distinct: every row is its own class.
TEST(MalformedInput, CaseNamesAreDistinct) {
  std::set<std::string> names;
  for (const auto& c : cases()) EXPECT_TRUE(names.insert(c.name).second) << c.name;
}

// A valid message after all that still works: rejections leave no state behind.
TEST(MalformedInput, InstanceStillServesValidRequestsAfterRejections) {
  FakeHost host;
  auto created = Instance::create(two_account_config(), host);
  ASSERT_TRUE(created.ok());
  Instance& instance = **created;
  for (const auto& c : cases()) {
    const Request req = c.make(instance, host);
    instance.handle({req.method, req.path, req.query, "", req.body, ""});
  }
  const std::size_t dispatched_before = host.dispatched.size();
  const Request ok = signed_message(with(base_message(), "/msgid"_json_pointer, "fresh"));
  const HttpResponse res = instance.handle({ok.method, ok.path, ok.query, "", ok.body, ""});
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(host.dispatched.size(), dispatched_before + 1);
}

}  // namespace
}  // namespace cwc::core
