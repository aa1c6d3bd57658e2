#include "common/text_checks.h"

#include <gtest/gtest.h>

#include <string>

#include "fuzz/fuzz_support.h"

namespace cwc::checks {
namespace {

// The byte-at-a-time definition the vectorised check must agree with.
bool reference_in(unsigned char c, Alphabet alphabet) {
  const bool base64 = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
  if (base64) return true;
  if (alphabet != Alphabet::Base64 && c == '=') return true;
  return alphabet == Alphabet::Base64PaddedUrlSafe && (c == '-' || c == '_' || c == '.');
}

// Every byte value at every offset of strings 0..40 long (covering the 16-byte SIMD blocks,
// the 8-byte words and the padded tail of each), in each alphabet.
TEST(AllInAlphabet, AgreesWithTheByteDefinitionForEveryByteAtEveryOffset) {
  for (const Alphabet alphabet : {Alphabet::Base64, Alphabet::Base64Padded, Alphabet::Base64PaddedUrlSafe}) {
    for (std::size_t len = 0; len <= 40; ++len) {
      const std::string clean(len, 'Q');
      ASSERT_TRUE(all_in_alphabet(clean, alphabet)) << len;
      for (std::size_t at = 0; at < len; ++at) {
        for (int byte = 0; byte < 256; ++byte) {
          std::string text = clean;
          text[at] = static_cast<char>(byte);
          ASSERT_EQ(all_in_alphabet(text, alphabet), reference_in(static_cast<unsigned char>(byte), alphabet))
              << "alphabet " << static_cast<int>(alphabet) << " len " << len << " offset " << at << " byte " << byte;
        }
      }
    }
  }
}

TEST(AllInAlphabet, RealCiphertextShapes) {
  const std::string ciphertext = "kM4wFPY5ozW4vXqLwKDTzr6ae3fy8IJa3KWfWvvRyOnUtdRWGjEovPmDXRvDqk2LXVtt8lj5jQjMZx5BbcsHoA==";
  EXPECT_TRUE(all_in_alphabet(ciphertext, Alphabet::Base64Padded));
  EXPECT_FALSE(all_in_alphabet(ciphertext, Alphabet::Base64));  // the padding
  EXPECT_TRUE(all_in_alphabet(ciphertext.substr(0, ciphertext.size() - 2), Alphabet::Base64));
  EXPECT_FALSE(all_in_alphabet(ciphertext + "\"", Alphabet::Base64PaddedUrlSafe));
  EXPECT_FALSE(all_in_alphabet("abc\\u0041", Alphabet::Base64PaddedUrlSafe));
  EXPECT_TRUE(all_in_alphabet("nonce-1_2.3", Alphabet::Base64PaddedUrlSafe));
  EXPECT_FALSE(all_in_alphabet("nonce-1_2.3", Alphabet::Base64Padded));
  EXPECT_FALSE(all_in_alphabet("\xE4\xBD\xA0\xE5\xA5\xBD", Alphabet::Base64PaddedUrlSafe));
}

bool reference_json_special(unsigned char c) { return c < 0x20 || c == '"' || c == '\\'; }

// Every byte value at every offset of strings 0..40 long, searched from every start position:
// the first special byte at or after the start is found, never one before it, and a second
// special byte further on never hides the first.
TEST(FindJsonSpecial, AgreesWithTheByteDefinitionForEveryByteAtEveryOffset) {
  for (std::size_t len = 0; len <= 40; ++len) {
    const std::string clean(len, 'a');
    for (std::size_t from = 0; from <= len; ++from) ASSERT_EQ(find_json_special(clean, from), std::string::npos);
    for (std::size_t at = 0; at < len; ++at) {
      for (int byte = 0; byte < 256; ++byte) {
        std::string text = clean;
        text[at] = static_cast<char>(byte);
        if (at + 3 < len) text[len - 1] = '"';
        for (std::size_t from = 0; from <= len; ++from) {
          std::size_t expected = std::string::npos;
          for (std::size_t i = from; i < len; ++i) {
            if (reference_json_special(static_cast<unsigned char>(text[i]))) {
              expected = i;
              break;
            }
          }
          ASSERT_EQ(find_json_special(text, from), expected) << "len " << len << " offset " << at << " byte " << byte
                                                             << " from " << from;
        }
      }
    }
  }
}

TEST(FindJsonSpecial, PlainUtf8TextHasNoneAndEscapesAreFound) {
  EXPECT_EQ(find_json_special("你好，Clawdbot，请帮我总结一下今天的会议。"), std::string::npos);
  EXPECT_EQ(find_json_special(R"({"msgid":"m"})"), 1u);
  EXPECT_EQ(find_json_special(R"({"msgid":"m"})", 2), 7u);
  EXPECT_EQ(find_json_special("line one of a long answer\nline two"), 25u);
  EXPECT_EQ(find_json_special(std::string("tab	here")), 3u);
}

// Valid and invalid sequences at every offset of ASCII text 0..40 bytes long (the 16-byte SIMD
// skip, the 8-byte words and the byte loop each see them), against the independent validator
// of the fuzz targets; an invalid sequence is reported where it starts.
TEST(InvalidUtf8Offset, AgreesWithAnIndependentValidatorAtEveryOffset) {
  const std::string sequences[] = {"\xC3\xA9",     "\xE4\xBD\xA0", "\xF0\x9F\x98\x80", "\x80",        "\xC0\xAF",
                                   "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xE4\xBD",     "\xFF",        "\xC2"};
  for (const std::string& sequence : sequences) {
    const bool valid = cwc::fuzz::valid_utf8(sequence);
    for (std::size_t len = 0; len <= 40; ++len) {
      for (std::size_t at = 0; at <= len; ++at) {
        const std::string text = std::string(at, 'a') + sequence + std::string(len - at, 'b');
        ASSERT_EQ(is_valid_utf8(text), cwc::fuzz::valid_utf8(text)) << "len " << len << " at " << at;
        ASSERT_EQ(invalid_utf8_offset(text), valid ? std::string::npos : at) << "len " << len << " at " << at;
      }
    }
  }
}

}  // namespace
}  // namespace cwc::checks
