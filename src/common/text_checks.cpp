#include "common/text_checks.h"

#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace cwc::checks {
namespace {

// SWAR byte tests on a word whose eight bytes are all below 0x80: each returns the word with the
// high bit set in exactly the bytes that pass (no carries cross bytes for such words).
constexpr std::uint64_t kOnes = 0x0101010101010101ull;
constexpr std::uint64_t kHigh = 0x8080808080808080ull;
constexpr std::uint64_t kLow7 = 0x7f7f7f7f7f7f7f7full;

std::uint64_t bytes_equal(std::uint64_t w, unsigned char c) {
  const std::uint64_t y = w ^ (kOnes * c);  // zero bytes where w had c
  return ~(((y & kLow7) + kLow7) | y) & kHigh;
}

// lo <= byte <= hi, for 0 < lo <= hi < 0x80: w + (0x80 - lo) reaches the high bit exactly when
// byte >= lo, and w + (0x7f - hi) exactly when byte > hi.
std::uint64_t bytes_between(std::uint64_t w, unsigned char lo, unsigned char hi) {
  return (w + kOnes * (0x80u - lo)) & ~(w + kOnes * (0x7fu - hi)) & kHigh;
}

bool word_in_alphabet(std::uint64_t w, Alphabet alphabet) {
  if ((w & kHigh) != 0) return false;
  std::uint64_t ok = bytes_between(w | (kOnes * 0x20), 'a', 'z') |  // | 0x20 folds A-Z onto a-z only
                     bytes_between(w, '0', '9') | bytes_equal(w, '+') | bytes_equal(w, '/');
  if (alphabet != Alphabet::Base64) ok |= bytes_equal(w, '=');
  if (alphabet == Alphabet::Base64PaddedUrlSafe) ok |= bytes_equal(w, '-') | bytes_equal(w, '_') | bytes_equal(w, '.');
  return ok == kHigh;
}

}  // namespace

bool all_in_alphabet(std::string_view s, Alphabet alphabet) {
  std::size_t i = 0;
#if defined(__SSE2__)
  // Sixteen bytes per step where SSE2 exists (every x86-64); the same tests as word_in_alphabet,
  // "x - lo <= span" as min(x - lo, span) == x - lo in unsigned bytes. Eight-byte words (below)
  // measured slower than the byte table they replaced; this is about ten times faster.
  const __m128i fold = _mm_set1_epi8(0x20);
  const __m128i letter_lo = _mm_set1_epi8('a');
  const __m128i letter_span = _mm_set1_epi8('z' - 'a');
  const __m128i digit_lo = _mm_set1_epi8('0');
  const __m128i digit_span = _mm_set1_epi8('9' - '0');
  for (; s.size() - i >= 16; i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + i));
    const __m128i letter = _mm_sub_epi8(_mm_or_si128(v, fold), letter_lo);
    const __m128i digit = _mm_sub_epi8(v, digit_lo);
    __m128i ok = _mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(letter, letter_span), letter),
                              _mm_cmpeq_epi8(_mm_min_epu8(digit, digit_span), digit));
    ok = _mm_or_si128(ok, _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('+')), _mm_cmpeq_epi8(v, _mm_set1_epi8('/'))));
    if (alphabet != Alphabet::Base64) ok = _mm_or_si128(ok, _mm_cmpeq_epi8(v, _mm_set1_epi8('=')));
    if (alphabet == Alphabet::Base64PaddedUrlSafe) {
      ok = _mm_or_si128(ok, _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('-')),
                                         _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('_')),
                                                      _mm_cmpeq_epi8(v, _mm_set1_epi8('.')))));
    }
    if (_mm_movemask_epi8(ok) != 0xFFFF) return false;
  }
#endif
  std::uint64_t word = 0;
  for (; s.size() - i >= sizeof word; i += sizeof word) {
    std::memcpy(&word, s.data() + i, sizeof word);
    if (!word_in_alphabet(word, alphabet)) return false;
  }
  if (i == s.size()) return true;
  word = kOnes * 'A';  // the tail, filled up with a letter every alphabet has
  std::memcpy(&word, s.data() + i, s.size() - i);
  return word_in_alphabet(word, alphabet);
}

std::size_t find_json_special(std::string_view s, std::size_t pos) {
  std::size_t i = pos;
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  const __m128i below_space = _mm_set1_epi8(0x1f);
  for (; i < s.size() && s.size() - i >= 16; i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + i));
    const __m128i special = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                                         _mm_cmpeq_epi8(_mm_min_epu8(v, below_space), v));
    if (const int mask = _mm_movemask_epi8(special); mask != 0) return i + static_cast<unsigned>(__builtin_ctz(mask));
  }
#else
  // Eight bytes per step: (w - 0x20..) & ~w has a high bit set in some byte exactly when a byte
  // is below 0x20 (bytes >= 0x80 never count), and (y - 0x01..) & ~y when a byte of y is zero.
  for (; i < s.size() && s.size() - i >= 8; i += 8) {
    std::uint64_t w = 0;
    std::memcpy(&w, s.data() + i, sizeof w);
    const std::uint64_t q = w ^ (kOnes * '"');
    const std::uint64_t b = w ^ (kOnes * '\\');
    if ((((w - kOnes * 0x20) & ~w) | ((q - kOnes) & ~q) | ((b - kOnes) & ~b)) & kHigh) break;
  }
#endif
  for (; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == '"' || c == '\\') return i;
  }
  return std::string_view::npos;
}

std::size_t invalid_utf8_offset(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    // ASCII runs (most of every message: JSON syntax, ids, urls) sixteen bytes at a time with
    // SSE2 (the byte's high bit is all movemask reads), then eight.
#if defined(__SSE2__)
    if (s.size() - i >= 16 &&
        _mm_movemask_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + i))) == 0) {
      i += 16;
      continue;
    }
#endif
    std::uint64_t word = 0;
    if (s.size() - i >= sizeof word) {
      std::memcpy(&word, s.data() + i, sizeof word);
      if ((word & 0x8080808080808080ull) == 0) {
        i += sizeof word;
        continue;
      }
    }
    const auto lead = static_cast<unsigned char>(s[i]);
    if (lead < 0x80) {
      ++i;
      continue;
    }
    std::size_t extra = 0;
    std::uint32_t cp = 0;
    if (lead >= 0xC2 && lead <= 0xDF) {
      extra = 1;
      cp = lead & 0x1Fu;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      extra = 2;
      cp = lead & 0x0Fu;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      extra = 3;
      cp = lead & 0x07u;
    } else {
      return i;  // continuation byte, C0/C1 (overlong) or F5..FF
    }
    if (s.size() - i <= extra) return i;  // truncated sequence
    for (std::size_t k = 1; k <= extra; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xC0) != 0x80) return i;
      cp = cp << 6 | (c & 0x3Fu);
    }
    const bool overlong = (extra == 2 && cp < 0x800) || (extra == 3 && cp < 0x10000);
    if (overlong || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += extra + 1;
  }
  return std::string_view::npos;
}

bool json_depth_within(std::string_view json_text, std::size_t max_depth) {
  std::size_t depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : json_text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return false;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return true;
}

std::string printable(std::string_view s, std::size_t max_bytes, bool keep_utf8) {
  static constexpr char kHex[] = "0123456789abcdef";
  keep_utf8 = keep_utf8 && is_valid_utf8(s);
  std::string out;
  out.reserve(s.size() < max_bytes ? s.size() : max_bytes);
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    // Length of the unit at i: a whole UTF-8 sequence when kept, else one (escaped) byte.
    std::size_t n = 1;
    if (keep_utf8 && c >= 0x80) n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
    const bool escape = c < 0x20 || c == 0x7F || (c >= 0x80 && !keep_utf8);
    if (out.size() + (escape ? 4 : n) > max_bytes) {
      out += "...";
      break;
    }
    if (escape) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out.append(s.substr(i, n));
    }
    i += n;
  }
  return out;
}

}  // namespace cwc::checks
