// Small text checks shared by the parsers of untrusted input: strict UTF-8 validation, a JSON
// nesting bound checked before parsing, and log-safe rendering of attacker-chosen bytes.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace cwc::checks {

// Offset of the first byte that does not start a valid UTF-8 sequence (overlongs, surrogates
// and code points above U+10FFFF are invalid), or npos when `s` is valid UTF-8.
std::size_t invalid_utf8_offset(std::string_view s);
inline bool is_valid_utf8(std::string_view s) { return invalid_utf8_offset(s) == std::string_view::npos; }

// Which bytes all_in_alphabet accepts: the base64 alphabet A-Z a-z 0-9 + /, optionally with
// '=' (padding, anywhere), and optionally also - _ . (harmless in a JSON string or a query).
enum class Alphabet { Base64, Base64Padded, Base64PaddedUrlSafe };

// True when every byte of `s` is in `alphabet`. Sixteen bytes per step with SSE2, eight without
// (these checks run over every request ciphertext, in the envelope and again in the strict
// decoder, and over the reply's other fields; a table lookup per byte was 8 % of a stream
// refresh).
bool all_in_alphabet(std::string_view s, Alphabet alphabet);

// Offset of the first byte at or after `pos` that a JSON string cannot hold as it is ('"', '\\'
// or a control byte below 0x20), or npos. Sixteen bytes per step with SSE2: both the message
// reader (looking for a string's end) and the reply writer (looking for bytes to escape) spend
// most of their time here on plain text.
std::size_t find_json_special(std::string_view s, std::size_t pos = 0);

// True when no array/object in `json_text` nests deeper than `max_depth`. A linear scan that
// skips string contents; for invalid JSON it bounds the depth the parser could reach before
// failing. Run it before parsing, so deep nesting costs neither stack nor memory.
bool json_depth_within(std::string_view json_text, std::size_t max_depth);

// `s` for a log line or an error detail: at most about `max_bytes` of it (then "..."), with
// control characters shown as \xNN so one request can only ever produce one bounded line.
// Bytes >= 0x80 are kept when `keep_utf8` is set and `s` is valid UTF-8 (never cut inside a
// sequence); otherwise they are escaped too, so the result is always valid UTF-8.
std::string printable(std::string_view s, std::size_t max_bytes = 256, bool keep_utf8 = false);

}  // namespace cwc::checks
