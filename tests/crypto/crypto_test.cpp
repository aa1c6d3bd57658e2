#include "crypto/crypto.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <algorithm>

#include <array>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "support/test_data.h"

namespace cwc::crypto {
namespace {

using cwc::testing::hex_to_bytes;
using cwc::testing::vector_named;

MessageCrypto crypto_for(const nlohmann::json& v) {
  auto key = AesKey::from_encoding_aes_key(v.at("encodingAESKey").get<std::string>());
  EXPECT_TRUE(key.ok());
  return MessageCrypto(*key, v.at("receiveId").get<std::string>());
}

std::array<std::uint8_t, 16> random_of(const nlohmann::json& v) {
  const std::string bytes = hex_to_bytes(v.at("random_hex").get<std::string>());
  std::array<std::uint8_t, 16> out{};
  std::copy(bytes.begin(), bytes.end(), out.begin());
  return out;
}

TEST(Signature, VerifyUrlVectorMatchesOfficialSignature) {
  auto v = vector_named("verify-url");
  EXPECT_EQ(compute_signature(v["token"].get<std::string>(), v["timestamp"].get<std::string>(),
                              v["nonce"].get<std::string>(), v["echostr"].get<std::string>()),
            v["msg_signature"].get<std::string>());
}

TEST(Signature, OfficialJsonExampleSignature) {
  auto v = vector_named("official-json-example");
  EXPECT_TRUE(signature_matches(v["msg_signature"].get<std::string>(), v["token"].get<std::string>(),
                                v["timestamp"].get<std::string>(), v["nonce"].get<std::string>(),
                                v["encrypt"].get<std::string>()));
}

TEST(Signature, RejectsWrongShortAndUppercaseSignatures) {
  auto v = vector_named("verify-url");
  const std::string sig = v["msg_signature"];
  std::string upper = sig;
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::string flipped = sig;
  flipped[0] = flipped[0] == '0' ? '1' : '0';
  for (const std::string& bad : {upper, flipped, sig.substr(0, 39), sig + "0", std::string()}) {
    EXPECT_FALSE(signature_matches(bad, v["token"].get<std::string>(), v["timestamp"].get<std::string>(),
                                   v["nonce"].get<std::string>(), v["echostr"].get<std::string>()))
        << bad;
  }
}

TEST(Signature, SortsTheFourStringsBeforeHashing) {
  // The order of arguments must not matter: WeCom sorts them.
  EXPECT_EQ(compute_signature("a", "b", "c", "d"), compute_signature("d", "c", "b", "a"));
  EXPECT_EQ(compute_signature("a", "b", "c", "d").size(), 40u);
}

// The signature is SHA-1 over the four strings in std::sort order, byte for byte, including
// ties in the first byte (a timestamp and a nonce that both start with '1'), prefixes, empty
// parts and bytes above 0x7F (ordered as unsigned, as std::string_view compares).
TEST(Signature, OrdersPartsExactlyAsStdSortDoes) {
  const std::array<std::array<std::string, 4>, 7> cases = {{
      {"token", "1409659813", "1372623149", "ENCRYPTED"},
      {"1", "12", "123", "1234"},
      {"abc", "abd", "ab", "abc"},
      {"", "x", "", "y"},
      {"\x80z", "\x7fz", "\xff", "a"},
      {"same", "same", "same", "same"},
      {"Zeta", "alpha", "_under", "9nine"},
  }};
  const MessageCrypto crypto(*AesKey::from_encoding_aes_key(std::string(43, 'A')), "");
  for (const auto& c : cases) {
    std::array<std::string, 4> sorted = c;
    std::sort(sorted.begin(), sorted.end());
    const std::string joined = sorted[0] + sorted[1] + sorted[2] + sorted[3];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    ASSERT_EQ(EVP_Digest(joined.data(), joined.size(), md, &md_len, EVP_sha1(), nullptr), 1);
    const std::string expected = to_hex(std::string_view(reinterpret_cast<const char*>(md), md_len));
    for (std::size_t r = 0; r < 4; ++r) {  // every rotation of the arguments
      EXPECT_EQ(compute_signature(c[r], c[(r + 1) % 4], c[(r + 2) % 4], c[(r + 3) % 4]), expected) << joined;
      EXPECT_EQ(crypto.signature(c[r], c[(r + 1) % 4], c[(r + 2) % 4], c[(r + 3) % 4]), expected) << joined;
    }
  }
}

TEST(MessageCryptoTest, DecryptsVerifyUrlEchostr) {
  auto v = vector_named("verify-url");
  auto plain = crypto_for(v).decrypt(v["echostr"].get<std::string>());
  ASSERT_TRUE(plain.ok()) << plain.error().describe();
  EXPECT_EQ(*plain, v["plaintext"].get<std::string>());
}

TEST(MessageCryptoTest, DecryptsOfficialJsonExample) {
  auto v = vector_named("official-json-example");
  auto plain = crypto_for(v).decrypt(v["encrypt"].get<std::string>());
  ASSERT_TRUE(plain.ok()) << plain.error().describe();
  EXPECT_EQ(*plain, v["plaintext"].get<std::string>());
}

TEST(MessageCryptoTest, BotVectorsEncryptByteForByteAndDecryptBack) {
  for (const char* name : {"bot-text-single", "bot-stream-reply"}) {
    SCOPED_TRACE(name);
    auto v = vector_named(name);
    auto crypto = crypto_for(v);
    const std::string encrypt = crypto.encrypt(v["plaintext"].get<std::string>(), random_of(v));
    EXPECT_EQ(encrypt, v["encrypt"].get<std::string>());
    auto plain = crypto.decrypt(encrypt);
    ASSERT_TRUE(plain.ok());
    EXPECT_EQ(*plain, v["plaintext"].get<std::string>());
    const std::string sig_key = v.contains("msg_signature") ? "msg_signature" : "msgsignature";
    EXPECT_EQ(compute_signature(v["token"].get<std::string>(), v["timestamp"].get<std::string>(),
                                v["nonce"].get<std::string>(), encrypt),
              v[sig_key].get<std::string>());
  }
}

// The AES and SHA-1 contexts are reused from one message to the next: every message must still
// start from the key's IV (CBC chains blocks, so a leftover IV changes every byte) and a fresh
// digest, and a failed decrypt must not leave anything behind for the next one.
TEST(MessageCryptoTest, ReusedContextsGiveTheVectorsEveryTime) {
  auto v = vector_named("bot-stream-reply");
  auto crypto = crypto_for(v);
  const MessageCrypto copy = crypto;  // copies share the reusable contexts
  const std::string expected = v["encrypt"].get<std::string>();
  const std::string sig_key = v.contains("msg_signature") ? "msg_signature" : "msgsignature";
  for (int round = 0; round < 5; ++round) {
    SCOPED_TRACE(round);
    const MessageCrypto& which = round % 2 ? copy : crypto;
    EXPECT_EQ(which.encrypt(v["plaintext"].get<std::string>(), random_of(v)), expected);
    auto plain = which.decrypt(expected);
    ASSERT_TRUE(plain.ok()) << plain.error().describe();
    EXPECT_EQ(*plain, v["plaintext"].get<std::string>());
    const std::string signature =
        which.signature(v["token"].get<std::string>(), v["timestamp"].get<std::string>(), v["nonce"].get<std::string>(), expected);
    EXPECT_EQ(signature, v[sig_key].get<std::string>());
    EXPECT_TRUE(which.signature_matches(signature, v["token"].get<std::string>(), v["timestamp"].get<std::string>(),
                                        v["nonce"].get<std::string>(), expected));
    EXPECT_FALSE(which.signature_matches(std::string(40, '0'), v["token"].get<std::string>(),
                                         v["timestamp"].get<std::string>(), v["nonce"].get<std::string>(), expected));
    // Bad padding (the last block replaced) in between: an error, and the next round is unaffected.
    std::string corrupt = *base64_decode(expected);
    for (std::size_t i = corrupt.size() - 16; i < corrupt.size(); ++i) corrupt[i] = static_cast<char>(i * 7 + round);
    EXPECT_FALSE(which.decrypt(base64_encode(corrupt)).ok());
    EXPECT_FALSE(which.decrypt_media(corrupt.substr(0, 40)).ok());  // not whole blocks
  }
}

// A reused context continues the CBC chain of its previous message and cancels it in the first
// block (aes_cbc_in_place). Messages of many lengths, each encrypted and decrypted through the
// shared contexts in a different order than they were made, must equal what a fresh context
// (a new MessageCrypto each time) gives: a chain carried over from the wrong message, or not
// carried at all, breaks the first block of the next one.
TEST(MessageCryptoTest, ReusedContextsCarryNothingFromOneMessageToTheNext) {
  auto v = vector_named("bot-text-single");
  const auto shared = crypto_for(v);
  std::vector<std::string> messages, ciphertexts;
  for (std::size_t len : {0u, 1u, 11u, 12u, 13u, 15u, 16u, 44u, 45u, 300u, 1000u, 4097u}) {
    std::string message(len, '\0');
    for (std::size_t i = 0; i < len; ++i) message[i] = static_cast<char>('a' + (i * 7 + len) % 26);
    std::array<std::uint8_t, 16> prefix{};
    prefix.fill(static_cast<std::uint8_t>(len));
    const std::string ciphertext = shared.encrypt(message, prefix);
    EXPECT_EQ(ciphertext, crypto_for(v).encrypt(message, prefix)) << len;
    messages.push_back(message);
    ciphertexts.push_back(ciphertext);
  }
  for (std::size_t k = 0; k < messages.size(); ++k) {
    const std::size_t i = (k * 5) % messages.size();  // 5 is coprime with 12: every message once
    auto plain = shared.decrypt(ciphertexts[i]);
    ASSERT_TRUE(plain.ok()) << i << ": " << plain.error().describe();
    EXPECT_EQ(*plain, messages[i]) << i;
    // decrypt() drops the first block (the random prefix), so a wrong first block shows only in
    // the whole frame, which decrypt_media returns through the same contexts.
    auto frame = shared.decrypt_media(*base64_decode(ciphertexts[i]));
    ASSERT_TRUE(frame.ok()) << i;
    const std::size_t len = messages[i].size();
    std::string expected(16, static_cast<char>(len & 0xff));
    expected += {static_cast<char>(len >> 24), static_cast<char>((len >> 16) & 0xff), static_cast<char>((len >> 8) & 0xff),
                 static_cast<char>(len & 0xff)};
    EXPECT_EQ(*frame, expected + messages[i]) << i;
  }
}

// encrypt_append writes what encrypt returns after whatever the buffer held, and
// encrypted_size predicts its length, for every framing length around the pad-32 and base64
// boundaries and with a receiveId.
TEST(MessageCryptoTest, EncryptAppendAndEncryptedSizeAgreeWithEncrypt) {
  auto v = vector_named("bot-text-single");
  const auto crypto = crypto_for(v);
  const MessageCrypto with_receive_id(*AesKey::from_encoding_aes_key(v.at("encodingAESKey").get<std::string>()), "wx5823bf96d3bd56c7");
  for (const MessageCrypto* which : {&crypto, &with_receive_id}) {
    for (std::size_t len = 0; len <= 100; ++len) {
      const std::string message(len, 'm');
      const std::string encrypted = which->encrypt(message, random_of(v));
      EXPECT_EQ(encrypted.size(), which->encrypted_size(len)) << len;
      std::string out = "{\"encrypt\":\"";
      ASSERT_TRUE(which->encrypt_append(out, message, random_of(v)));
      EXPECT_EQ(out, "{\"encrypt\":\"" + encrypted) << len;
    }
  }
}

// More threads than reusable contexts (8 per key): borrowed, overflowing and given-back contexts
// all give correct, independent results. TSan runs this (scripts/test.sh).
TEST(MessageCryptoThreads, ManyThreadsSharingOneKeyGetCorrectIndependentResults) {
  auto v = vector_named("bot-text-single");
  const auto crypto = crypto_for(v);
  constexpr int kThreads = 12;
  constexpr int kRounds = 200;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const MessageCrypto mine = crypto;  // half the threads use a copy: same contexts
      const MessageCrypto& use = t % 2 ? mine : crypto;
      std::array<std::uint8_t, 16> prefix{};
      for (int i = 0; i < kRounds; ++i) {
        prefix[0] = static_cast<std::uint8_t>(t);
        prefix[1] = static_cast<std::uint8_t>(i);
        const std::string message = "thread " + std::to_string(t) + " message " + std::to_string(i) + std::string(i % 50, 'x');
        const std::string sealed = use.encrypt(message, prefix);
        auto opened = use.decrypt(sealed);
        if (!opened || *opened != message) ++failures;
        const std::string sig = use.signature("token", std::to_string(i), "nonce", sealed);
        if (sig != compute_signature("token", std::to_string(i), "nonce", sealed)) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST(MessageCryptoTest, BotVectorPadLengthsMatch) {
  for (const char* name : {"bot-text-single", "bot-stream-reply"}) {
    auto v = vector_named(name);
    const std::string framed_len_source = v["plaintext"].get<std::string>();
    const std::size_t framed = 16 + 4 + framed_len_source.size() + v["receiveId"].get<std::string>().size();
    EXPECT_EQ(32 - framed % 32, v["pad"].get<std::size_t>()) << name;
  }
}

TEST(MessageCryptoTest, ReceiveIdMismatchIsReported) {
  auto v = vector_named("verify-url");
  auto key = AesKey::from_encoding_aes_key(v["encodingAESKey"].get<std::string>());
  MessageCrypto wrong(*key, "");
  auto plain = wrong.decrypt(v["echostr"].get<std::string>());
  ASSERT_FALSE(plain.ok());
  EXPECT_EQ(plain.error().kind, ErrorKind::ReceiveIdMismatch);
  EXPECT_EQ(plain.error().wecom_code(), -40005);
  EXPECT_EQ(plain.error().http_status(), 400);
}

TEST(MessageCryptoTest, WrongKeyFailsToDecrypt) {
  auto v = vector_named("verify-url");
  auto key = AesKey::from_encoding_aes_key("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG");
  ASSERT_TRUE(key.ok());
  MessageCrypto wrong(*key, v["receiveId"].get<std::string>());
  auto plain = wrong.decrypt(v["echostr"].get<std::string>());
  ASSERT_FALSE(plain.ok());
  EXPECT_EQ(plain.error().kind, ErrorKind::DecryptFailed);
}

TEST(MessageCryptoTest, RejectsInvalidBase64AndBadLengths) {
  auto v = vector_named("verify-url");
  auto crypto = crypto_for(v);
  for (const std::string bad : {"not base64!", "abc", "", "AAAA", "AAAAAAAAAAAAAAAAAAAAAA=="}) {
    auto r = crypto.decrypt(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().kind, ErrorKind::DecryptFailed) << bad;
  }
  EXPECT_EQ(crypto.decrypt("not base64!").error().wecom_code(), -40010);
}

TEST(MessageCryptoTest, LengthFieldBeyondBufferIsRejected) {
  auto v = vector_named("bot-text-single");
  auto crypto = crypto_for(v);
  // Frame a message whose length field claims more bytes than follow.
  std::string framed(16, 'r');
  framed += std::string("\x00\x00\x10\x00", 4);  // 4096
  framed += "short";
  auto cipher = aes_cbc_encrypt_raw(crypto.key(), pad32(framed));
  auto r = crypto.decrypt(base64_encode(cipher));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().wecom_code(), -40008);
  EXPECT_NE(r.error().detail.find("length field"), std::string::npos);
}

TEST(Padding, Pad32AlwaysAddsOneToThirtyTwoBytes) {
  for (std::size_t n = 0; n < 100; ++n) {
    std::string padded = pad32(std::string(n, 'x'));
    EXPECT_EQ(padded.size() % 32, 0u);
    const auto pad = static_cast<unsigned char>(padded.back());
    EXPECT_GE(pad, 1);
    EXPECT_LE(pad, 32);
    auto back = unpad32(padded);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back->size(), n);
  }
}

TEST(Padding, Unpad32ChecksEveryPadByte) {
  std::string padded = pad32("hello");  // 27 bytes of 27
  ASSERT_TRUE(unpad32(padded).ok());
  std::string corrupt = padded;
  corrupt[padded.size() - 10] = 0x01;
  EXPECT_FALSE(unpad32(corrupt).ok());
  std::string zero = padded;
  zero.back() = 0;
  EXPECT_FALSE(unpad32(zero).ok());
  std::string big = padded;
  big.back() = 33;
  EXPECT_FALSE(unpad32(big).ok());
  EXPECT_FALSE(unpad32(std::string(1, '\x05')).ok());  // pad longer than data
  EXPECT_FALSE(unpad32("").ok());
}

TEST(Base64, RoundTripsAndIsStrict) {
  for (const std::string& s : std::vector<std::string>{"", "f", "fo", "foo", "foob", "fooba", "foobar", std::string("\x00\xff\x10", 3)}) {
    auto back = base64_decode(base64_encode(s));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, s);
  }
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_FALSE(base64_decode("Zm9v YmFy").has_value());
  EXPECT_FALSE(base64_decode("Zm9=YmFy").has_value());
  EXPECT_FALSE(base64_decode("Zm9vYmF").has_value());
  EXPECT_FALSE(base64_decode("Zm9vYmF\n").has_value());
  EXPECT_FALSE(base64_decode("Zm9v-_Fy").has_value());
}

TEST(AesKeyTest, ValidatesLengthAndAlphabetWithPreciseMessages) {
  auto short_key = AesKey::from_encoding_aes_key(std::string(42, 'a'));
  ASSERT_FALSE(short_key.ok());
  EXPECT_EQ(short_key.error().detail, "must be 43 characters (got 42)");
  auto long_key = AesKey::from_encoding_aes_key(std::string(44, 'a'));
  EXPECT_EQ(long_key.error().detail, "must be 43 characters (got 44)");
  auto bad_char = AesKey::from_encoding_aes_key(std::string(42, 'a') + "!");
  ASSERT_FALSE(bad_char.ok());
  EXPECT_NE(bad_char.error().detail.find("base64"), std::string::npos);
  EXPECT_TRUE(AesKey::from_encoding_aes_key("6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt").ok());
}

TEST(Media, DecryptsPad32EncryptedBytes) {
  auto v = vector_named("bot-text-single");
  auto crypto = crypto_for(v);
  std::string image("\x89PNG\r\n\x1a\n", 8);
  image += std::string(1000, '\x42');
  auto encrypted = aes_cbc_encrypt_raw(crypto.key(), pad32(image));
  auto back = crypto.decrypt_media(encrypted);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, image);
  EXPECT_FALSE(crypto.decrypt_media(encrypted.substr(0, 31)).ok());
}

TEST(Md5, MatchesKnownDigest) { EXPECT_EQ(md5_hex("abc"), "900150983cd24fb0d6963f7d28e17f72"); }

// Regression (fuzz_decrypt, tests/fuzz/corpus/fuzz_decrypt/regress-unpad-48-bytes): a 48-byte
// plaintext ending in 16 bytes of 0x10 was accepted, but WeCom pads to whole 32-byte blocks.
TEST(Padding, Unpad32RejectsLengthsThatAreNotWhole32ByteBlocks) {
  const std::string forty_eight = std::string(32, 'x') + std::string(16, '\x10');
  auto r = unpad32(forty_eight);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().describe(), "decrypt failed: padded length 48 is not a multiple of 32");
  EXPECT_TRUE(unpad32(std::string(32, 'x') + std::string(32, '\x20')).ok());

  auto v = vector_named("bot-text-single");
  auto crypto = crypto_for(v);
  const std::string cipher = aes_cbc_encrypt_raw(crypto.key(), forty_eight);
  ASSERT_EQ(cipher.size(), 48u);
  auto plain = crypto.decrypt(base64_encode(cipher));
  ASSERT_FALSE(plain.ok());
  EXPECT_EQ(plain.error().kind, ErrorKind::DecryptFailed);
  EXPECT_FALSE(crypto.decrypt_media(cipher).ok());
}

// Regression (fuzz_decrypt, tests/fuzz/corpus/fuzz_decrypt/regress-base64-noncanonical): the
// unused low bits before '=' padding were ignored, so two texts decoded to the same bytes.
TEST(Base64, RejectsNonZeroPaddingBits) {
  EXPECT_EQ(*base64_decode("QQ=="), "A");
  EXPECT_FALSE(base64_decode("QR==").has_value());
  EXPECT_EQ(*base64_decode("QUI="), "AB");
  EXPECT_FALSE(base64_decode("QUJ=").has_value());
  auto v = vector_named("bot-stream-reply");
  std::string encrypt = v["encrypt"].get<std::string>();
  ASSERT_EQ(encrypt.substr(encrypt.size() - 2), "0=");
  EXPECT_TRUE(base64_decode(encrypt).has_value());
  encrypt[encrypt.size() - 2] = '1';
  EXPECT_FALSE(base64_decode(encrypt).has_value());
}

}  // namespace
}  // namespace cwc::crypto
