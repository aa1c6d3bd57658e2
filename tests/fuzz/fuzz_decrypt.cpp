// Fuzzes the unwrapping of a WeCom ciphertext with a fixed key: base64 → AES-256-CBC → 32-byte
// PKCS#7 → random16 → length → receiveId. The first byte picks how far the fuzzer's bytes get
// before the first check can stop them:
//   0: the bytes are the base64 text itself (base64 decoder),
//   1: the bytes are raw ciphertext, base64-encoded for it (AES + padding on garbage),
//   2: the bytes are the padded plaintext, AES-encrypted for it (padding, length, receiveId),
//   3: the bytes are a message, framed and encrypted correctly (must round-trip exactly),
//   4: media decryption and unpad32 on the raw bytes.
// Bit 3 of the first byte selects a classic-app receiveId instead of "". Modes 3 and 4 also
// compare the long-lived objects' results with a fresh object's (the CBC chain across inputs).
#include <array>

#include "crypto/crypto.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cwc;
  if (size == 0) return 0;
  const std::uint8_t mode = data[0];
  const std::string_view rest = fuzz::as_view(data + 1, size - 1);
  static const auto key = *crypto::AesKey::from_encoding_aes_key(cwc::testing::kAesKey);
  // Kept across inputs, as an account's are: their reused AES contexts continue the CBC chain
  // of whatever the previous input left (crypto.cpp), which a fresh object must match exactly.
  static const crypto::MessageCrypto bot(key, ""), classic_app(key, "ww1436e0e65a779aee");
  const crypto::MessageCrypto& mc = (mode & 8) ? classic_app : bot;

  auto check_error = [](const Error& e) {
    CWC_FUZZ_CHECK(e.kind == ErrorKind::DecryptFailed || e.kind == ErrorKind::ReceiveIdMismatch, "decrypt error kind");
  };
  switch (mode & 7) {
    case 0: {
      auto plain = mc.decrypt(rest);
      if (!plain) check_error(plain.error());
      if (auto raw = crypto::base64_decode(rest)) {
        CWC_FUZZ_CHECK(crypto::base64_encode(*raw) == rest, "base64 decode accepted a non-canonical text");
      }
      break;
    }
    case 1: {
      auto plain = mc.decrypt(crypto::base64_encode(rest));
      if (!plain) check_error(plain.error());
      break;
    }
    case 2: {
      const std::string_view blocks = rest.substr(0, rest.size() - rest.size() % 16);
      auto plain = mc.decrypt(crypto::base64_encode(crypto::aes_cbc_encrypt_raw(key, blocks)));
      if (plain) {
        CWC_FUZZ_CHECK(plain->size() + 20 <= blocks.size(), "plaintext longer than its frame");
      } else {
        check_error(plain.error());
      }
      break;
    }
    case 3: {
      std::array<std::uint8_t, crypto::kRandomPrefixBytes> prefix{};
      for (std::size_t i = 0; i < prefix.size() && i < rest.size(); ++i) prefix[i] = static_cast<std::uint8_t>(rest[i]);
      const std::string encrypted = mc.encrypt(rest, prefix);
      CWC_FUZZ_CHECK(encrypted == crypto::MessageCrypto(key, mc.receive_id()).encrypt(rest, prefix),
                     "reused contexts encrypt differently from fresh ones");
      auto plain = mc.decrypt(encrypted);
      CWC_FUZZ_CHECK(plain.ok() && *plain == rest, "encrypt/decrypt round trip");
      break;
    }
    default: {
      auto media = mc.decrypt_media(rest);
      if (!media) check_error(media.error());
      // Every byte of the result shows, the first block included (decrypt() drops it).
      auto fresh = crypto::MessageCrypto(key, "").decrypt_media(rest);
      CWC_FUZZ_CHECK(media.ok() == fresh.ok() && (!media.ok() || *media == *fresh),
                     "reused contexts decrypt differently from fresh ones");
      auto unpadded = crypto::unpad32(rest);
      if (unpadded) {
        CWC_FUZZ_CHECK(crypto::pad32(*unpadded) == rest, "unpad32 accepted inconsistent padding");
      }
      break;
    }
  }
  return 0;
}
