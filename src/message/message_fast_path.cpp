// The single-pass reader for WeCom's common message shapes (see message_fast_path.h). Under
// `perf`, nlohmann's lexer and DOM (per-character string building, std::map inserts and frees)
// were ~30 % of an inbound message's cost; this reader copies each field it needs once and
// skips the rest. Whenever the text leaves the subset, or anything about it would be an error,
// it gives up and the full parser decides: so the accepted language and every error message
// stay the full parser's.
#include "message/message_fast_path.h"

#include <cstdint>
#include <string>

namespace cwc::message::detail {
namespace {

// How deep an object the reader skips inside a member it does not read (WeCom's own objects
// nest two or three levels); deeper ones go to the full parser and its depth limit.
constexpr int kMaxSkipDepth = 8;

// Reads the subset: objects, strings without \u escapes, JSON whitespace. Every read_* returns
// false when the text leaves the subset (or is not JSON at all).
class SubsetReader {
 public:
  explicit SubsetReader(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

  bool at_end() {
    skip_blank();
    return p_ == end_;
  }

  // A string into `out` (nullptr: validate and skip it).
  bool read_string(std::string* out) {
    if (!consume('"')) return false;
    if (out != nullptr) out->clear();
    const char* run = p_;  // start of the bytes not yet copied
    while (p_ < end_) {
      const auto c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        if (out != nullptr) out->append(run, p_);
        ++p_;
        return true;
      }
      if (c < 0x20) return false;  // JSON forbids raw control characters in strings
      if (c != '\\') {
        ++p_;
        continue;
      }
      if (end_ - p_ < 2) return false;
      char decoded = 0;
      switch (p_[1]) {
        case '"': decoded = '"'; break;
        case '\\': decoded = '\\'; break;
        case '/': decoded = '/'; break;
        case 'b': decoded = '\b'; break;
        case 'f': decoded = '\f'; break;
        case 'n': decoded = '\n'; break;
        case 'r': decoded = '\r'; break;
        case 't': decoded = '\t'; break;
        default: return false;  // \u (surrogate rules) and invalid escapes: the full parser's job
      }
      if (out != nullptr) {
        out->append(run, p_);
        *out += decoded;
      }
      p_ += 2;
      run = p_;
    }
    return false;  // unterminated
  }

  // {"key": value, ...}: on_member(key) is called with the reader at the value, must consume
  // it, and returns false to give up.
  template <typename OnMember>
  bool read_object(OnMember&& on_member) {
    if (!consume('{')) return false;
    if (consume('}')) return true;
    std::string key;
    do {
      if (!read_string(&key) || !consume(':') || !on_member(key)) return false;
    } while (consume(','));
    return consume('}');
  }

  // A string, or an object of such values up to `depth` levels.
  bool skip_value(int depth) {
    skip_blank();
    if (p_ < end_ && *p_ == '"') return read_string(nullptr);
    if (depth == 0) return false;
    return read_object([&](const std::string&) { return skip_value(depth - 1); });
  }

 private:
  void skip_blank() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }
  bool consume(char c) {
    skip_blank();
    if (p_ < end_ && *p_ == c) {
      ++p_;
      return true;
    }
    return false;
  }

  const char* p_;
  const char* end_;
};

// A string member read at most once: a repeated key gives up (which duplicate wins is the full
// parser's business).
bool read_once(SubsetReader& reader, bool& seen, std::string& value) {
  if (seen) return false;
  seen = true;
  return reader.read_string(&value);
}

// {"<wanted>": "...", anything else in the subset}: `value` is "" when the member is absent.
bool read_object_member(SubsetReader& reader, bool& seen_object, std::string_view wanted, std::string& value) {
  if (seen_object) return false;
  seen_object = true;
  bool seen = false;
  return reader.read_object([&](const std::string& key) {
    return key == wanted ? read_once(reader, seen, value) : reader.skip_value(kMaxSkipDepth);
  });
}

// The members parse_json_message_full reads for the common shapes, as they were in the text.
struct CommonFields {
  std::string msgtype, msgid, aibotid, chatid, response_url, chattype;
  std::string from_userid, text_content, voice_content, image_url, file_url, stream_id;
  bool seen_msgtype = false, seen_msgid = false, seen_aibotid = false, seen_chatid = false;
  bool seen_response_url = false, seen_chattype = false;
  bool has_from = false, has_text = false, has_voice = false, has_image = false, has_file = false;
  bool has_stream = false;
};

bool read_member(SubsetReader& reader, const std::string& key, CommonFields& f) {
  if (key == "msgtype") return read_once(reader, f.seen_msgtype, f.msgtype);
  if (key == "msgid") return read_once(reader, f.seen_msgid, f.msgid);
  if (key == "aibotid") return read_once(reader, f.seen_aibotid, f.aibotid);
  if (key == "chatid") return read_once(reader, f.seen_chatid, f.chatid);
  if (key == "response_url") return read_once(reader, f.seen_response_url, f.response_url);
  if (key == "chattype") return read_once(reader, f.seen_chattype, f.chattype);
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

std::optional<Message> parse_common_json_message(std::string_view plaintext) {
  SubsetReader reader(plaintext);
  CommonFields f;
  if (!reader.read_object([&](const std::string& key) { return read_member(reader, key, f); }) || !reader.at_end()) {
    return std::nullopt;
  }
  // From here on, every condition the full parser reports as an error gives up instead.
  if (f.msgtype.empty()) return std::nullopt;
  for (const std::string* id : {&f.msgid, &f.aibotid, &f.chatid, &f.response_url}) {
    if (id->size() > kMaxUrlBytes) return std::nullopt;
  }
  Message msg;
  if (f.chattype == "group") msg.chattype = ChatType::Group;
  else if (f.chattype.empty() || f.chattype == "single") msg.chattype = ChatType::Single;
  else return std::nullopt;
  msg.type = msg_type_of(f.msgtype);
  switch (msg.type) {
    case MsgType::Text:
      if (!f.has_text) return std::nullopt;
      msg.text = std::move(f.text_content);
      break;
    case MsgType::Voice:
      if (!f.has_voice) return std::nullopt;
      msg.text = std::move(f.voice_content);
      break;
    case MsgType::Image:
    case MsgType::File: {
      const bool image = msg.type == MsgType::Image;
      std::string& url = image ? f.image_url : f.file_url;
      if (!(image ? f.has_image : f.has_file) || url.empty()) return std::nullopt;
      msg.media.push_back({f.msgtype, std::move(url)});
      break;
    }
    case MsgType::StreamRefresh:
      if (!f.has_stream || f.stream_id.empty() || f.stream_id.size() > kMaxIdBytes) return std::nullopt;
      msg.stream_id = std::move(f.stream_id);
      break;
    case MsgType::Mixed:
    case MsgType::Event:
      return std::nullopt;
    case MsgType::Unsupported:
      break;
  }
  msg.msgtype = std::move(f.msgtype);
  msg.msgid = std::move(f.msgid);
  msg.aibotid = std::move(f.aibotid);
  msg.chatid = std::move(f.chatid);
  msg.response_url = std::move(f.response_url);
  msg.from_userid = std::move(f.from_userid);
  return msg;
}

}  // namespace cwc::message::detail
