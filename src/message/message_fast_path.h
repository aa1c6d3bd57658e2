// The two JSON message parsers behind message::parse_message, exposed for the differential tests
// (tests/message) and the fuzz target that cross-checks them (fuzz_message); nothing else calls
// them directly.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

#include "common/error.h"
#include "message/message.h"

namespace cwc::message::detail {

// Bounds on what we accept from a decrypted message: WeCom's ids and urls are short; text is
// capped by WeCom itself far below the body cap.
inline constexpr std::size_t kMaxIdBytes = 512;
inline constexpr std::size_t kMaxUrlBytes = kMaxIdBytes * 8;  // aibotid, chatid, response_url, media urls

MsgType msg_type_of(std::string_view msgtype);

// A single-pass reader for the shapes WeCom actually sends on the hot path (text, voice, image,
// file and stream-refresh messages: an object of strings and objects of strings, no arrays,
// numbers or \u escapes). "No message" means "not in that subset, or it would be an error": the
// caller then runs the full parser, which owns every error message. For valid UTF-8 text (the
// only text parse_message lets through: it checks the whole plaintext first), the Message it
// produces equals what parse_json_message_full returns for the same text; that is the property
// fuzz_message checks on every input.
// It fills `msg` (a default-constructed one) in place and returns true; false leaves `msg` in
// an unspecified state, to be discarded.
bool read_common_json_message(std::string_view plaintext, Message& msg);
// The same, as a value (for the tests).
std::optional<Message> parse_common_json_message(std::string_view plaintext);

// The general parser (nlohmann DOM): every valid JSON text, every error with its precise cause.
Result<Message> parse_json_message_full(std::string_view plaintext);

}  // namespace cwc::message::detail
