// The single-pass reader for WeCom's common message shapes (see message_fast_path.h). Under
// `perf`, nlohmann's lexer and DOM (per-character string building, std::map inserts and frees)
// were ~30 % of an inbound message's cost; this reader copies each field it needs once and
// skips the rest. Whenever the text leaves the subset, or anything about it would be an error,
// it gives up and the full parser decides: so the accepted language and every error message
// stay the full parser's.
#include "message/message_fast_path.h"

#include <string>

#include "common/text_checks.h"

namespace cwc::message::detail {
namespace {

// How deep an object the reader skips inside a member it does not read (WeCom's own objects
// nest two or three levels); deeper ones go to the full parser and its depth limit.
constexpr int kMaxSkipDepth = 8;

// A JSON string as it stands in the text, between its quotes: nothing is copied while reading,
// and only the fields the model keeps are decoded, once, into their final place.
struct RawString {
  std::string_view text;
  bool escaped = false;  // holds one of the simple backslash escapes (never \u: see read_string)
};

// Reads the subset: objects, strings without \u escapes, JSON whitespace. Every read_* returns
// false when the text leaves the subset (or is not JSON at all).
class SubsetReader {
 public:
  explicit SubsetReader(std::string_view text) : text_(text) {}

  bool at_end() {
    skip_blank();
    return pos_ == text_.size();
  }

  bool read_string(RawString& out) {
    if (!consume('"')) return false;
    const std::size_t start = pos_;
    out.escaped = false;
    for (;;) {
      pos_ = checks::find_json_special(text_, pos_);
      if (pos_ == std::string_view::npos) return false;  // unterminated
      const char c = text_[pos_];
      if (c == '"') break;
      if (c != '\\' || pos_ + 1 == text_.size()) return false;  // raw control byte, or a cut escape
      switch (text_[pos_ + 1]) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't': break;
        default: return false;  // \u (surrogate rules) and invalid escapes: the full parser's job
      }
      out.escaped = true;
      pos_ += 2;
    }
    out.text = text_.substr(start, pos_ - start);
    ++pos_;
    return true;
  }

  // {"key": value, ...}: on_member(key) is called with the reader at the value, must consume
  // it, and returns false to give up. Keys are compared as they stand: an escaped key (WeCom
  // sends none) gives up.
  template <typename OnMember>
  bool read_object(OnMember&& on_member) {
    if (!consume('{')) return false;
    if (consume('}')) return true;
    RawString key;
    do {
      if (!read_string(key) || key.escaped || !consume(':') || !on_member(key.text)) return false;
    } while (consume(','));
    return consume('}');
  }

  // A string, or an object of such values up to `depth` levels.
  bool skip_value(int depth) {
    skip_blank();
    RawString ignored;
    if (pos_ < text_.size() && text_[pos_] == '"') return read_string(ignored);
    if (depth == 0) return false;
    return read_object([&](std::string_view) { return skip_value(depth - 1); });
  }

 private:
  void skip_blank() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\n' || text_[pos_] == '\r' || text_[pos_] == '\t')) {
      ++pos_;
    }
  }
  bool consume(char c) {
    skip_blank();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  std::string_view text_;
  std::size_t pos_ = 0;
};

// The decoded value of a string read_string accepted.
void assign_decoded(std::string& out, RawString s) {
  if (!s.escaped) {
    out.assign(s.text);
    return;
  }
  out.clear();
  out.reserve(s.text.size());
  for (std::size_t i = 0; i < s.text.size(); ++i) {
    if (s.text[i] != '\\') {
      out += s.text[i];
      continue;
    }
    switch (s.text[++i]) {
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      default: out += s.text[i]; break;  // '"', '\\', '/'
    }
  }
}

// A string member read at most once: a repeated key gives up (which duplicate wins is the full
// parser's business).
struct Field {
  RawString value;
  bool seen = false;
};

bool read_once(SubsetReader& reader, Field& field) {
  if (field.seen) return false;
  field.seen = true;
  return reader.read_string(field.value);
}

// {"<wanted>": "...", anything else in the subset}: `value` stays empty when the member is absent.
bool read_object_member(SubsetReader& reader, bool& seen_object, std::string_view wanted, Field& value) {
  if (seen_object) return false;
  seen_object = true;
  return reader.read_object([&](std::string_view key) {
    return key == wanted ? read_once(reader, value) : reader.skip_value(kMaxSkipDepth);
  });
}

// The members parse_json_message_full reads for the common shapes, as they stand in the text.
struct CommonFields {
  Field msgtype, msgid, aibotid, chatid, response_url, chattype;
  Field from_userid, text_content, voice_content, image_url, file_url, stream_id;
  bool has_from = false, has_text = false, has_voice = false, has_image = false, has_file = false;
  bool has_stream = false;
};

bool read_member(SubsetReader& reader, std::string_view key, CommonFields& f) {
  if (key == "msgtype") return read_once(reader, f.msgtype);
  if (key == "msgid") return read_once(reader, f.msgid);
  if (key == "aibotid") return read_once(reader, f.aibotid);
  if (key == "chatid") return read_once(reader, f.chatid);
  if (key == "response_url") return read_once(reader, f.response_url);
  if (key == "chattype") return read_once(reader, f.chattype);
  if (key == "from") return read_object_member(reader, f.has_from, "userid", f.from_userid);
  if (key == "text") return read_object_member(reader, f.has_text, "content", f.text_content);
  if (key == "voice") return read_object_member(reader, f.has_voice, "content", f.voice_content);
  if (key == "image") return read_object_member(reader, f.has_image, "url", f.image_url);
  if (key == "file") return read_object_member(reader, f.has_file, "url", f.file_url);
  if (key == "stream") return read_object_member(reader, f.has_stream, "id", f.stream_id);
  // quote, mixed (arrays) and event (kept whole as JSON) are read by the full parser only.
  if (key == "quote" || key == "mixed" || key == "event") return false;
  return reader.skip_value(kMaxSkipDepth);
}

}  // namespace

bool read_common_json_message(std::string_view plaintext, Message& msg) {
  SubsetReader reader(plaintext);
  CommonFields f;
  if (!reader.read_object([&](std::string_view key) { return read_member(reader, key, f); }) || !reader.at_end()) {
    return false;
  }
  // From here on, every condition the full parser reports as an error gives up instead. The
  // bounds are checked on the raw text: decoding only ever shortens it, and a raw text over a
  // bound that decodes under it is just one more case for the full parser.
  if (f.msgtype.value.text.empty()) return false;
  for (const Field* id : {&f.msgid, &f.aibotid, &f.chatid, &f.response_url}) {
    if (id->value.text.size() > kMaxUrlBytes) return false;
  }
  // Escaped or not, these two are compared decoded.
  std::string chattype;
  assign_decoded(chattype, f.chattype.value);
  if (chattype == "group") msg.chattype = ChatType::Group;
  else if (chattype.empty() || chattype == "single") msg.chattype = ChatType::Single;
  else return false;
  assign_decoded(msg.msgtype, f.msgtype.value);
  msg.type = msg_type_of(msg.msgtype);
  switch (msg.type) {
    case MsgType::Text:
      if (!f.has_text) return false;
      assign_decoded(msg.text, f.text_content.value);
      break;
    case MsgType::Voice:
      if (!f.has_voice) return false;
      assign_decoded(msg.text, f.voice_content.value);
      break;
    case MsgType::Image:
    case MsgType::File: {
      const bool image = msg.type == MsgType::Image;
      if (!(image ? f.has_image : f.has_file)) return false;
      MediaItem item{msg.msgtype, {}};
      assign_decoded(item.url, (image ? f.image_url : f.file_url).value);
      if (item.url.empty()) return false;
      msg.media.push_back(std::move(item));
      break;
    }
    case MsgType::StreamRefresh:
      if (!f.has_stream) return false;
      assign_decoded(msg.stream_id, f.stream_id.value);
      if (msg.stream_id.empty() || msg.stream_id.size() > kMaxIdBytes) return false;
      break;
    case MsgType::Mixed:
    case MsgType::Event:
      return false;
    case MsgType::Unsupported:
      break;
  }
  assign_decoded(msg.msgid, f.msgid.value);
  assign_decoded(msg.aibotid, f.aibotid.value);
  assign_decoded(msg.chatid, f.chatid.value);
  assign_decoded(msg.response_url, f.response_url.value);
  assign_decoded(msg.from_userid, f.from_userid.value);
  return true;
}

std::optional<Message> parse_common_json_message(std::string_view plaintext) {
  Message msg;
  if (!read_common_json_message(plaintext, msg)) return std::nullopt;
  return msg;
}

}  // namespace cwc::message::detail
