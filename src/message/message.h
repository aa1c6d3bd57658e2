// The decrypted WeCom bot message, parsed from JSON (intelligent bot) or XML (classic callbacks)
// into one model, and the plaintext of the replies we send back.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace cwc::message {

enum class MsgType { Text, Mixed, Image, Voice, File, StreamRefresh, Event, Unsupported };
enum class ChatType { Single, Group };

std::string_view to_string(MsgType type);

struct MediaItem {
  std::string kind;  // "image" | "file"
  std::string url;
  friend bool operator==(const MediaItem&, const MediaItem&) = default;
};

struct Message {
  MsgType type = MsgType::Unsupported;
  std::string msgtype;      // as received, e.g. "text", "template_card_event"
  std::string msgid;
  std::string aibotid;
  ChatType chattype = ChatType::Single;
  std::string chatid;
  std::string from_userid;
  std::string response_url;
  std::string text;          // text / voice transcript / the text items of mixed, joined by '\n'
  std::vector<MediaItem> media;
  std::string quote_text;    // quoted message's text (any msgtype may carry a quote)
  std::string stream_id;     // StreamRefresh
  std::string event_type;    // Event: enter_chat | template_card_event | feedback_event | ...
  std::string event_json;    // Event: the "event" object as JSON ("{}" for XML callbacks)

  friend bool operator==(const Message&, const Message&) = default;

  bool is_user_message() const {
    return type == MsgType::Text || type == MsgType::Mixed || type == MsgType::Image ||
           type == MsgType::Voice || type == MsgType::File;
  }
};

// Parses the decrypted plaintext. Errors are BadMessage with the precise cause ("not valid JSON",
// "missing from.userid", ...). Unknown msgtypes parse as MsgType::Unsupported (the caller
// decides; WeCom adds types over time).
Result<Message> parse_message(std::string_view plaintext);
// The same into `out` (a model the caller owns, filled in place: the request path avoids moving
// a dozen strings). On an error `out` is unspecified.
std::optional<Error> parse_message_into(std::string_view plaintext, Message& out);

// Reply plaintexts.
struct ReplyImage {
  std::string base64;
  std::string md5_hex;
};
struct StreamReply {
  std::string id;
  bool finish = false;
  std::string content;
  std::vector<ReplyImage> images;  // msg_item, only with finish
};
std::string build_stream_reply(const StreamReply& reply);
std::string build_text_reply(std::string_view content);

}  // namespace cwc::message
