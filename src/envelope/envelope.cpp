#include "envelope/envelope.h"

#include "common/text_checks.h"

#include <nlohmann/json.hpp>
#include <pugixml.hpp>

#include <algorithm>
#include <array>
#include <cctype>

namespace cwc::envelope {
namespace {

using nlohmann::json;

// WeCom's values are short: a 40-char signature, a 10-digit timestamp, a short nonce and an
// echostr of a few hundred bytes. Anything far larger is not WeCom.
constexpr std::size_t kMaxParamBytes = 4096;

// WeCom's envelopes are flat objects; the bound leaves room for extra fields and keeps a body of
// nested brackets from costing memory (and stack in any recursive walk) before it is rejected.
constexpr std::size_t kMaxEnvelopeDepth = 16;

// Every XML document WeCom sends is UTF-8. Forcing the encoding stops pugixml from guessing
// UTF-16/32 from the first bytes ("<\0\0\0") and converting attacker bytes into text.
constexpr unsigned kXmlOptions = pugi::parse_default & ~pugi::parse_doctype;

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string_view trim_leading_blank(std::string_view s) {
  std::size_t i = 0;
  // A UTF-8 BOM is tolerated before the body, as some proxies add one.
  if (s.substr(0, 3) == "\xEF\xBB\xBF") i = 3;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')) ++i;
  return s.substr(i);
}

// True when the text holds "<!DOCTYPE" or "<!ENTITY" (any case) anywhere.
bool has_markup_declaration(std::string_view text) {
  for (std::size_t pos = text.find("<!"); pos != std::string_view::npos; pos = text.find("<!", pos + 2)) {
    for (std::string_view keyword : {std::string_view("DOCTYPE"), std::string_view("ENTITY")}) {
      std::string_view candidate = text.substr(pos + 2, keyword.size());
      if (candidate.size() == keyword.size() &&
          std::equal(candidate.begin(), candidate.end(), keyword.begin(), [](char a, char b) {
            return std::toupper(static_cast<unsigned char>(a)) == b;
          })) {
        return true;
      }
    }
  }
  return false;
}

std::string xml_text(const pugi::xml_node& node) {
  // child_value() covers both PCDATA and CDATA children.
  return node.child_value();
}

}  // namespace

std::optional<std::string> percent_decode(std::string_view text) {
  if (text.find('%') == std::string_view::npos) return std::string(text);  // WeCom's usual values
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c != '%') {
      out += c;
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    const int hi = hex_value(text[i + 1]);
    const int lo = hex_value(text[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

std::string percent_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

namespace {

// Calls on_param(name, value) for every "name=value" of the query, percent-decoded; returns
// BadQuery for the first undecodable component. A component without '%' (all of WeCom's) is
// handed over as it stands in the query, without a copy.
template <typename OnParam>
std::optional<Error> for_each_param(std::string_view query, OnParam&& on_param) {
  std::string name_buffer, value_buffer;
  auto decode = [](std::string_view raw, std::string& buffer) -> std::optional<std::string_view> {
    if (raw.find('%') == std::string_view::npos) return raw;
    auto decoded = percent_decode(raw);
    if (!decoded) return std::nullopt;
    buffer = std::move(*decoded);
    return std::string_view(buffer);
  };
  std::size_t pos = 0;
  while (pos <= query.size()) {
    std::size_t amp = query.find('&', pos);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view part = query.substr(pos, amp - pos);
    pos = amp + 1;
    if (part.empty()) continue;
    const std::size_t eq = part.find('=');
    auto name = decode(part.substr(0, eq), name_buffer);
    if (!name) return make_error(ErrorKind::BadQuery, "bad percent-encoding in a parameter name");
    auto value = decode(eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1), value_buffer);
    if (!value) {
      // The name is the sender's: bounded and escaped, it may end up in a log line.
      return make_error(ErrorKind::BadQuery, "bad percent-encoding in parameter " + checks::printable(*name, 32));
    }
    on_param(*name, *value);
  }
  return std::nullopt;
}

}  // namespace

Result<std::vector<QueryParam>> parse_query(std::string_view query) {
  std::vector<QueryParam> params;
  params.reserve(static_cast<std::size_t>(std::count(query.begin(), query.end(), '&')) + 1);
  auto error = for_each_param(query, [&](std::string_view name, std::string_view value) {
    params.push_back({std::string(name), std::string(value)});
  });
  if (error) return *std::move(error);
  return params;
}

Result<SignedQuery> parse_signed_query(std::string_view query, bool want_echostr) {
  SignedQuery out;
  struct Slot {
    std::string_view name;
    std::string* target;
    bool seen = false;
  };
  std::array<Slot, 4> slots = {{{"msg_signature", &out.msg_signature},
                                {"timestamp", &out.timestamp},
                                {"nonce", &out.nonce},
                                {"echostr", &out.echostr}}};
  const std::size_t wanted = want_echostr ? 4 : 3;
  // A repeated or oversized parameter is reported only once the whole query has decoded, so
  // an undecodable component anywhere is always the error named (as when the query was split
  // into a list first).
  std::optional<Error> conflict;
  auto error = for_each_param(query, [&](std::string_view name, std::string_view value) {
    for (std::size_t i = 0; i < wanted && !conflict; ++i) {
      Slot& slot = slots[i];
      if (name != slot.name) continue;
      if (slot.seen) {
        // Two different values would make "which one was signed" ambiguous.
        conflict = make_error(ErrorKind::BadQuery, std::string(slot.name) + " given twice");
      } else if (value.size() > kMaxParamBytes) {
        conflict = make_error(ErrorKind::BadQuery,
                              std::string(slot.name) + " longer than " + std::to_string(kMaxParamBytes) + " bytes");
      } else {
        slot.seen = true;
        slot.target->assign(value);
      }
    }
  });
  if (error) return *std::move(error);
  if (conflict) return *std::move(conflict);
  std::string missing;
  for (std::size_t i = 0; i < wanted; ++i) {
    if (slots[i].seen && !slots[i].target->empty()) continue;
    if (!missing.empty()) missing += ", ";
    missing += slots[i].name;
  }
  if (!missing.empty()) return make_error(ErrorKind::MissingQueryParams, missing);
  if (out.timestamp.size() > 20 ||
      !std::all_of(out.timestamp.begin(), out.timestamp.end(),
                   [](char c) { return c >= '0' && c <= '9'; })) {
    return make_error(ErrorKind::BadQuery, "timestamp is not a decimal number");
  }
  return out;
}

// WeCom's body is always exactly {"encrypt":"<base64>"}. Recognising that one shape directly
// skips a general JSON parse whose character-by-character string lexing is the largest single
// cost of an inbound request; anything else (other spacing, more keys, escapes) falls through to
// nlohmann, so the accepted language and the results are unchanged (fuzz_request_envelope
// cross-checks both paths).
std::optional<std::string_view> match_plain_json_envelope(std::string_view text) {
  constexpr std::string_view kPrefix = "{\"encrypt\":\"";
  constexpr std::string_view kSuffix = "\"}";
  while (!text.empty() && (text.back() == ' ' || text.back() == '\n' || text.back() == '\r' || text.back() == '\t')) {
    text.remove_suffix(1);
  }
  if (text.size() <= kPrefix.size() + kSuffix.size() || text.substr(0, kPrefix.size()) != kPrefix ||
      text.substr(text.size() - kSuffix.size()) != kSuffix) {
    return std::nullopt;
  }
  std::string_view value = text.substr(kPrefix.size(), text.size() - kPrefix.size() - kSuffix.size());
  if (!checks::all_in_alphabet(value, checks::Alphabet::Base64Padded)) return std::nullopt;
  return value;
}

Result<RequestEnvelope> parse_request_envelope(std::string_view body) {
  std::string_view text = trim_leading_blank(body);
  if (text.empty()) return make_error(ErrorKind::BadBody, "empty body (expected {\"encrypt\": ...})");
  if (auto plain = match_plain_json_envelope(text)) return RequestEnvelope::viewing(Format::Json, *plain);
  if (text.front() == '{') {
    if (!checks::json_depth_within(text, kMaxEnvelopeDepth)) {
      return make_error(ErrorKind::BadBody, "JSON body nests deeper than " + std::to_string(kMaxEnvelopeDepth) + " levels");
    }
    json doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded() || !doc.is_object()) {
      return make_error(ErrorKind::BadBody, "body is not valid JSON");
    }
    auto it = doc.find("encrypt");
    if (it == doc.end()) it = doc.find("Encrypt");
    if (it == doc.end()) return make_error(ErrorKind::BadBody, "JSON body has no \"encrypt\" field");
    if (!it->is_string() || it->get_ref<const std::string&>().empty()) {
      return make_error(ErrorKind::BadBody, "JSON \"encrypt\" is not a non-empty string");
    }
    return RequestEnvelope::owning(Format::Json, it->get<std::string>());
  }
  if (text.front() == '<') {
    // pugixml never fetches external entities, but a DTD has no business in a WeCom envelope,
    // and rejecting it early keeps entity games out of the picture entirely.
    if (has_markup_declaration(text)) {
      return make_error(ErrorKind::BadBody, "XML body with a DTD or entity declaration is not accepted");
    }
    pugi::xml_document doc;
    auto result = doc.load_buffer(text.data(), text.size(), kXmlOptions, pugi::encoding_utf8);
    if (!result) return make_error(ErrorKind::BadBody, std::string("body is not valid XML: ") + result.description());
    pugi::xml_node root = doc.document_element();
    pugi::xml_node node = root.child("Encrypt");
    if (!node) return make_error(ErrorKind::BadBody, "XML body has no <Encrypt> element");
    std::string encrypt = xml_text(node);
    if (encrypt.empty()) return make_error(ErrorKind::BadBody, "XML <Encrypt> is empty");
    return RequestEnvelope::owning(Format::Xml, std::move(encrypt));
  }
  return make_error(ErrorKind::BadBody, "body is neither JSON nor XML");
}

namespace {

// A reply field as a JSON string. The fields are base64, hex and digits (the nonce comes from
// the request, so it is checked too): such strings are their own JSON encoding, and copying them
// skips the serializer's per-character escaping of a ciphertext of up to ~27 KB. Anything else
// goes through nlohmann.
void append_json_field(std::string& out, std::string_view value) {
  if (checks::all_in_alphabet(value, checks::Alphabet::Base64PaddedUrlSafe)) {
    out += '"';
    out.append(value);
    out += '"';
  } else {
    out += json(value).dump(-1, ' ', false, json::error_handler_t::replace);
  }
}

// Everything after the "encrypt" value.
void append_json_reply_tail(std::string& out, std::string_view signature, std::string_view timestamp,
                            std::string_view nonce) {
  out += ",\"msgsignature\":";
  append_json_field(out, signature);
  out += ",\"timestamp\":";
  append_json_field(out, timestamp);
  out += ",\"nonce\":";
  append_json_field(out, nonce);
  out += '}';
}

constexpr std::size_t kJsonReplyFraming = 64;  // keys, quotes and braces around the four values

}  // namespace

JsonReplyWriter::JsonReplyWriter(std::size_t encrypt_size) {
  constexpr std::string_view kHead = "{\"encrypt\":\"";
  static_assert(kHead.size() == kEncryptStart);
  // The signature is 40 hex digits, the timestamp 10 digits, the nonce short: 128 covers them.
  body_.reserve(encrypt_size + kJsonReplyFraming + 128);
  body_ = kHead;
}

std::string JsonReplyWriter::finish(std::string_view signature, std::string_view timestamp,
                                    std::string_view nonce) && {
  body_ += '"';
  append_json_reply_tail(body_, signature, timestamp, nonce);
  return std::move(body_);
}

std::string build_reply_envelope(Format format, std::string_view encrypt, std::string_view signature,
                                 std::string_view timestamp, std::string_view nonce) {
  if (format == Format::Json) {
    std::string out;
    out.reserve(encrypt.size() + signature.size() + timestamp.size() + nonce.size() + kJsonReplyFraming);
    out += "{\"encrypt\":";
    append_json_field(out, encrypt);
    append_json_reply_tail(out, signature, timestamp, nonce);
    return out;
  }
  pugi::xml_document doc;
  pugi::xml_node root = doc.append_child("xml");
  root.append_child("Encrypt").append_child(pugi::node_cdata).set_value(std::string(encrypt).c_str());
  root.append_child("MsgSignature").append_child(pugi::node_cdata).set_value(std::string(signature).c_str());
  root.append_child("TimeStamp").append_child(pugi::node_pcdata).set_value(std::string(timestamp).c_str());
  root.append_child("Nonce").append_child(pugi::node_cdata).set_value(std::string(nonce).c_str());
  struct StringWriter : pugi::xml_writer {
    std::string out;
    void write(const void* data, std::size_t size) override { out.append(static_cast<const char*>(data), size); }
  } writer;
  doc.save(writer, "", pugi::format_raw | pugi::format_no_declaration);
  return writer.out;
}

Result<ReplyEnvelope> parse_reply_envelope(std::string_view body) {
  std::string_view text = trim_leading_blank(body);
  if (text.empty()) return make_error(ErrorKind::BadBody, "empty reply");
  if (text.front() == '{') {
    if (!checks::json_depth_within(text, kMaxEnvelopeDepth)) {
      return make_error(ErrorKind::BadBody, "reply nests deeper than " + std::to_string(kMaxEnvelopeDepth) + " levels");
    }
    json doc = json::parse(text.begin(), text.end(), nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) return make_error(ErrorKind::BadBody, "reply is not valid JSON");
    ReplyEnvelope out{Format::Json, {}, {}, {}, {}};
    auto get = [&](const char* key, std::string& target) {
      auto it = doc.find(key);
      if (it == doc.end()) return false;
      if (it->is_string()) target = it->get<std::string>();
      else if (it->is_number_integer()) target = std::to_string(it->get<long long>());
      else return false;
      return true;
    };
    if (!get("encrypt", out.encrypt) || !get("msgsignature", out.signature) ||
        !get("timestamp", out.timestamp) || !get("nonce", out.nonce)) {
      return make_error(ErrorKind::BadBody, "reply lacks encrypt/msgsignature/timestamp/nonce");
    }
    // Same rule as the XML form below: present but empty is missing (found by fuzz_reply_envelope).
    if (out.encrypt.empty() || out.signature.empty()) {
      return make_error(ErrorKind::BadBody, "reply lacks encrypt/msgsignature");
    }
    return out;
  }
  pugi::xml_document doc;
  if (has_markup_declaration(text)) return make_error(ErrorKind::BadBody, "reply with a DTD is not accepted");
  if (!doc.load_buffer(text.data(), text.size(), kXmlOptions, pugi::encoding_utf8)) {
    return make_error(ErrorKind::BadBody, "reply is not valid XML");
  }
  pugi::xml_node root = doc.document_element();
  ReplyEnvelope out{Format::Xml, xml_text(root.child("Encrypt")), xml_text(root.child("MsgSignature")),
                    xml_text(root.child("TimeStamp")), xml_text(root.child("Nonce"))};
  if (out.encrypt.empty() || out.signature.empty()) {
    return make_error(ErrorKind::BadBody, "reply lacks Encrypt/MsgSignature");
  }
  return out;
}

}  // namespace cwc::envelope
