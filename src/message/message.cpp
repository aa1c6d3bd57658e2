#include "message/message.h"

#include "common/text_checks.h"
#include "message/message_fast_path.h"

#include <nlohmann/json.hpp>
#include <pugixml.hpp>

namespace cwc::message {
namespace {

using nlohmann::json;

using detail::kMaxIdBytes;
using detail::kMaxUrlBytes;
using detail::msg_type_of;

// Real messages nest five levels at most (quote.mixed.msg_item[].text.content); anything much
// deeper is rejected before parsing, with a precise error, instead of costing memory.
constexpr std::size_t kMaxMessageDepth = 32;

Error bad(std::string detail) { return make_error(ErrorKind::BadMessage, std::move(detail)); }

// A string member or "" when absent; a non-string value is an error, except that identifiers
// (`numeric_ok`) may arrive as numbers (msgid has been seen as one in classic callbacks).
Result<std::string> string_member(const json& obj, const char* key, const std::string& where,
                                  bool numeric_ok = false) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::string();
  if (it->is_string()) return it->get<std::string>();
  if (numeric_ok && it->is_number_unsigned()) return std::to_string(it->get<unsigned long long>());
  if (numeric_ok && it->is_number_integer()) return std::to_string(it->get<long long>());
  return bad(where + key + " is not a string");
}

const json* object_member(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_object()) return nullptr;
  return &*it;
}

std::string quote_text_of(const json& quote) {
  std::string type = quote.value("msgtype", "");
  if (const json* t = object_member(quote, "text")) return t->value("content", "");
  if (const json* v = object_member(quote, "voice")) return v->value("content", "");
  if (const json* m = object_member(quote, "mixed")) {
    std::string out;
    if (auto items = m->find("msg_item"); items != m->end() && items->is_array()) {
      for (const auto& item : *items) {
        if (!item.is_object() || item.value("msgtype", "") != "text") continue;
        if (const json* t = object_member(item, "text")) {
          if (!out.empty()) out += '\n';
          out += t->value("content", "");
        }
      }
    }
    return out;
  }
  if (type == "image") return "[image]";
  if (type == "file") return "[file]";
  return {};
}

// Classic callbacks (and the older group bot) send XML. Both naming styles are accepted:
// <MsgType>/<Content>/<FromUserName>/<MsgId> and <From><UserId>/<Text><Content>/<ChatId>.
Result<Message> parse_xml_message(std::string_view plaintext) {
  pugi::xml_document doc;
  // encoding_utf8: WeCom's XML is UTF-8; never let pugixml guess UTF-16/32 from the first bytes.
  if (!doc.load_buffer(plaintext.data(), plaintext.size(), pugi::parse_default & ~pugi::parse_doctype,
                       pugi::encoding_utf8)) {
    return bad("decrypted message is not valid XML");
  }
  pugi::xml_node root = doc.document_element();
  Message msg;
  msg.msgtype = root.child_value("MsgType");
  if (msg.msgtype.empty()) return bad("missing MsgType");
  msg.type = msg_type_of(msg.msgtype);
  msg.msgid = root.child_value("MsgId");
  msg.chatid = root.child_value("ChatId");
  msg.chattype = (std::string_view(root.child_value("ChatType")) == "group" || !msg.chatid.empty())
                     ? ChatType::Group
                     : ChatType::Single;
  msg.from_userid = root.child_value("FromUserName");
  if (msg.from_userid.empty()) msg.from_userid = root.child("From").child_value("UserId");
  msg.response_url = root.child_value("ResponseUrl");
  switch (msg.type) {
    case MsgType::Text:
      msg.text = root.child_value("Content");
      if (msg.text.empty()) msg.text = root.child("Text").child_value("Content");
      break;
    case MsgType::Voice:
      msg.text = root.child_value("Recognition");
      if (msg.text.empty()) msg.text = root.child("Voice").child_value("Content");
      break;
    case MsgType::Image: {
      std::string url = root.child_value("PicUrl");
      if (url.empty()) url = root.child("Image").child_value("Url");
      if (url.empty()) return bad("image message without PicUrl");
      msg.media.push_back({"image", url});
      break;
    }
    case MsgType::Event:
      msg.event_type = root.child_value("Event");
      msg.event_json = "{}";
      if (msg.event_type.empty()) return bad("event message without Event");
      break;
    case MsgType::StreamRefresh:
      msg.stream_id = root.child("Stream").child_value("Id");
      if (msg.stream_id.empty()) return bad("stream refresh without Stream/Id");
      break;
    default:
      break;
  }
  return msg;
}

// The promises of the model, whichever format the message came in: required ids present, every
// field bounded, and every string valid UTF-8. (JSON text is UTF-8-checked as a whole before
// parsing; XML character references such as &#xD800; can still decode to invalid UTF-8, and the
// host is promised UTF-8 strings, so the fields are checked again here.)
// Checked in place: the model is large (a dozen strings) and moving it is not free.
std::optional<Error> check_model(const Message& msg) {
  if (msg.from_userid.empty() && msg.type != MsgType::StreamRefresh) return bad("missing from.userid");
  if (msg.is_user_message() && msg.msgid.empty()) return bad("missing msgid");
  constexpr std::size_t kUnbounded = std::string::npos;  // text: bounded by the body cap only
  const struct {
    const char* name;
    const std::string* value;
    std::size_t limit;
  } fields[] = {{"msgtype", &msg.msgtype, kMaxIdBytes},        {"msgid", &msg.msgid, kMaxIdBytes},
                {"from.userid", &msg.from_userid, kMaxIdBytes}, {"stream.id", &msg.stream_id, kMaxIdBytes},
                {"eventtype", &msg.event_type, kMaxIdBytes},    {"aibotid", &msg.aibotid, kMaxUrlBytes},
                {"chatid", &msg.chatid, kMaxUrlBytes},          {"response_url", &msg.response_url, kMaxUrlBytes},
                {"text", &msg.text, kUnbounded},                {"quote", &msg.quote_text, kUnbounded}};
  for (const auto& field : fields) {
    if (field.value->size() > field.limit) return bad(std::string(field.name) + " is too long");
    if (!checks::is_valid_utf8(*field.value)) return bad(std::string(field.name) + " is not valid UTF-8");
  }
  for (const auto& item : msg.media) {
    if (item.url.size() > kMaxUrlBytes) return bad(item.kind + " url is too long");
    if (!checks::is_valid_utf8(item.url)) return bad(item.kind + " url is not valid UTF-8");
  }
  return std::nullopt;
}

}  // namespace

MsgType detail::msg_type_of(std::string_view msgtype) {

  if (msgtype == "text") return MsgType::Text;
  if (msgtype == "mixed") return MsgType::Mixed;
  if (msgtype == "image") return MsgType::Image;
  if (msgtype == "voice") return MsgType::Voice;
  if (msgtype == "file") return MsgType::File;
  if (msgtype == "stream") return MsgType::StreamRefresh;
  if (msgtype == "event") return MsgType::Event;
  return MsgType::Unsupported;
}

Result<Message> detail::parse_json_message_full(std::string_view plaintext) {
  if (!checks::json_depth_within(plaintext, kMaxMessageDepth)) {
    return bad("decrypted message nests deeper than " + std::to_string(kMaxMessageDepth) + " levels");
  }
  json doc = json::parse(plaintext.begin(), plaintext.end(), nullptr, false);
  if (doc.is_discarded()) return bad("decrypted message is not valid JSON");
  if (!doc.is_object()) return bad("decrypted message is not a JSON object");
  Message msg;
  try {
    auto msgtype = string_member(doc, "msgtype", "");
    if (!msgtype) return msgtype.error();
    if (msgtype->empty()) return bad("missing msgtype");
    msg.msgtype = *msgtype;
    msg.type = msg_type_of(msg.msgtype);
    for (auto [key, target] : {std::pair{"msgid", &msg.msgid}, std::pair{"aibotid", &msg.aibotid},
                               std::pair{"chatid", &msg.chatid},
                               std::pair{"response_url", &msg.response_url}}) {
      auto value = string_member(doc, key, "", /*numeric_ok=*/std::string_view(key) == "msgid");
      if (!value) return value.error();
      if (value->size() > kMaxUrlBytes) return bad(std::string(key) + " is too long");
      *target = std::move(*value);
    }
    auto chattype = string_member(doc, "chattype", "");
    if (!chattype) return chattype.error();
    if (*chattype == "group") msg.chattype = ChatType::Group;
    else if (chattype->empty() || *chattype == "single") msg.chattype = ChatType::Single;
    else return bad("unknown chattype \"" + chattype->substr(0, 32) + "\"");
    if (const json* from = object_member(doc, "from")) {
      auto userid = string_member(*from, "userid", "from.", /*numeric_ok=*/true);
      if (!userid) return userid.error();
      msg.from_userid = std::move(*userid);
    }
    if (const json* quote = object_member(doc, "quote")) msg.quote_text = quote_text_of(*quote);

    switch (msg.type) {
      case MsgType::Text:
      case MsgType::Voice: {
        const json* body = object_member(doc, msg.type == MsgType::Text ? "text" : "voice");
        if (!body) return bad("msgtype " + msg.msgtype + " without a \"" + msg.msgtype + "\" object");
        auto content = string_member(*body, "content", msg.msgtype + ".");
        if (!content) return content.error();
        msg.text = std::move(*content);
        break;
      }
      case MsgType::Image:
      case MsgType::File: {
        const json* body = object_member(doc, msg.msgtype.c_str());
        if (!body) return bad("msgtype " + msg.msgtype + " without a \"" + msg.msgtype + "\" object");
        auto url = string_member(*body, "url", msg.msgtype + ".");
        if (!url) return url.error();
        if (url->empty()) return bad(msg.msgtype + ".url is missing");
        msg.media.push_back({msg.msgtype, std::move(*url)});
        break;
      }
      case MsgType::Mixed: {
        const json* body = object_member(doc, "mixed");
        if (!body) return bad("msgtype mixed without a \"mixed\" object");
        auto items = body->find("msg_item");
        if (items == body->end() || !items->is_array()) return bad("mixed.msg_item is not an array");
        for (const auto& item : *items) {
          if (!item.is_object()) return bad("mixed.msg_item entry is not an object");
          std::string kind = item.value("msgtype", "");
          if (kind == "text") {
            const json* t = object_member(item, "text");
            if (!msg.text.empty()) msg.text += '\n';
            if (t) msg.text += t->value("content", "");
          } else if (kind == "image") {
            const json* i = object_member(item, "image");
            std::string url = i ? i->value("url", "") : "";
            if (url.empty()) return bad("mixed image item without url");
            msg.media.push_back({"image", std::move(url)});
          }
        }
        break;
      }
      case MsgType::StreamRefresh: {
        const json* body = object_member(doc, "stream");
        if (!body) return bad("msgtype stream without a \"stream\" object");
        auto id = string_member(*body, "id", "stream.");
        if (!id) return id.error();
        if (id->empty()) return bad("stream.id is missing");
        if (id->size() > kMaxIdBytes) return bad("stream.id is too long");
        msg.stream_id = std::move(*id);
        break;
      }
      case MsgType::Event: {
        const json* body = object_member(doc, "event");
        if (!body) return bad("msgtype event without an \"event\" object");
        auto type = string_member(*body, "eventtype", "event.");
        if (!type) return type.error();
        if (type->empty()) return bad("event.eventtype is missing");
        msg.event_type = std::move(*type);
        // Kept whole for the host (template_card_event / feedback_event carry their own objects);
        // bounded like everything else in the message (the plaintext is already size-capped).
        msg.event_json = body->dump(-1, ' ', false, json::error_handler_t::replace);
        break;
      }
      case MsgType::Unsupported:
        break;
    }
  } catch (const json::exception& e) {
    // value() throws on a present member of the wrong type.
    return bad(std::string("unexpected field type: ") + e.what());
  }
  return msg;
}

std::string_view to_string(MsgType type) {
  switch (type) {
    case MsgType::Text: return "text";
    case MsgType::Mixed: return "mixed";
    case MsgType::Image: return "image";
    case MsgType::Voice: return "voice";
    case MsgType::File: return "file";
    case MsgType::StreamRefresh: return "stream";
    case MsgType::Event: return "event";
    case MsgType::Unsupported: return "unsupported";
  }
  return "unsupported";
}

std::optional<Error> parse_message_into(std::string_view plaintext, Message& out) {
  std::size_t i = 0;
  while (i < plaintext.size() && (plaintext[i] == ' ' || plaintext[i] == '\n' || plaintext[i] == '\r' || plaintext[i] == '\t')) ++i;
  if (i == plaintext.size()) return bad("decrypted message is empty");
  // WeCom's messages are UTF-8 and the host is promised UTF-8 text: reject rather than repair
  // (nothing WeCom sends fails this; a repaired message would be a different message).
  if (const std::size_t bad_at = checks::invalid_utf8_offset(plaintext); bad_at != std::string_view::npos) {
    return bad("decrypted message is not valid UTF-8 (byte " + std::to_string(bad_at) + ")");
  }
  const std::string_view text = plaintext.substr(i);
  out = Message{};
  // Most messages take the single-pass reader, straight into the caller's model; anything it
  // does not cover, including every error, goes through nlohmann (message_fast_path.h).
  if (text.front() != '<' && detail::read_common_json_message(text, out)) return check_model(out);
  auto msg = text.front() == '<' ? parse_xml_message(text) : detail::parse_json_message_full(text);
  if (!msg) return msg.error();
  out = std::move(*msg);
  return check_model(out);
}

Result<Message> parse_message(std::string_view plaintext) {
  Message msg;
  if (auto error = parse_message_into(plaintext, msg)) return *std::move(error);
  return msg;
}

namespace {

// Appends `text` as a JSON string, byte for byte as nlohmann's dump(-1, ' ', false, replace)
// writes it: '"', '\\' and control characters escaped (\b \f \n \r \t, else \u00xx), all
// other bytes of valid UTF-8 copied. Text that is not valid UTF-8 goes through nlohmann itself,
// so its replacement rules stay the only ones.
void append_json_string(std::string& out, std::string_view text) {
  if (checks::invalid_utf8_offset(text) != std::string_view::npos) {
    out += json(text).dump(-1, ' ', false, json::error_handler_t::replace);
    return;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  std::size_t run = 0;  // start of the bytes not yet copied
  // Answers are mostly plain text: find_json_special skips it 16 bytes at a time (this loop
  // was the top item of a refresh under perf, one branchy byte at a time).
  for (std::size_t i = checks::find_json_special(text); i != std::string_view::npos;
       i = checks::find_json_special(text, i + 1)) {
    const auto c = static_cast<unsigned char>(text[i]);
    out.append(text.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 15];
    }
  }
  out.append(text.data() + run, text.size() - run);
  out += '"';
}

}  // namespace

// Replies keep WeCom's documented key order (ordered_json), so they are byte-for-byte
// reproducible against the test vectors.
std::string build_stream_reply(const StreamReply& reply) {
  if (reply.images.empty() || !reply.finish) {
    // Every refresh answer takes this path: written directly, it skips building a JSON tree and
    // the serializer's per-character escaping (the top cost of a refresh under perf). The
    // output is identical to the ordered_json below (tests/message: StreamReplyFastPath*).
    std::string out;
    out.reserve(reply.id.size() + reply.content.size() + 64);
    out += R"({"msgtype":"stream","stream":{"id":)";
    append_json_string(out, reply.id);
    out += reply.finish ? R"(,"finish":true,"content":)" : R"(,"finish":false,"content":)";
    append_json_string(out, reply.content);
    out += "}}";
    return out;
  }
  nlohmann::ordered_json doc = {
      {"msgtype", "stream"},
      {"stream", {{"id", reply.id}, {"finish", reply.finish}, {"content", reply.content}}}};
  if (reply.finish && !reply.images.empty()) {
    auto items = nlohmann::ordered_json::array();
    for (const auto& image : reply.images) {
      items.push_back({{"msgtype", "image"}, {"image", {{"base64", image.base64}, {"md5", image.md5_hex}}}});
    }
    doc["stream"]["msg_item"] = std::move(items);
  }
  // Invalid UTF-8 can only come from the agent; replace rather than throw.
  return doc.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string build_text_reply(std::string_view content) {
  nlohmann::ordered_json doc = {{"msgtype", "text"}, {"text", {{"content", content}}}};
  return doc.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace cwc::message
