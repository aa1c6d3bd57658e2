// WeCom callback cryptography: signature, base64, AES-256-CBC with 32-byte PKCS#7 padding, and
// the random16 ‖ length ‖ message ‖ receiveid framing. All primitives come from OpenSSL (EVP).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/error.h"

namespace cwc::crypto {

inline constexpr std::size_t kAesKeyBytes = 32;
inline constexpr std::size_t kEncodingAesKeyChars = 43;
inline constexpr std::size_t kRandomPrefixBytes = 16;
inline constexpr std::size_t kPadBlock = 32;  // WeCom pads to 32 bytes, not AES's 16

// base64 (standard alphabet, '=' padding). decode is strict: length multiple of 4, no
// whitespace or foreign characters, padding only at the end.
std::string base64_encode(std::string_view bytes);
std::optional<std::string> base64_decode(std::string_view text);

// Lowercase hex SHA-1 over the four strings sorted lexicographically and concatenated.
std::string compute_signature(std::string_view token, std::string_view timestamp,
                              std::string_view nonce, std::string_view encrypt);

// Constant-time comparison of `signature` (as received; must be 40 lowercase hex chars) with
// the signature computed over the four strings.
bool signature_matches(std::string_view signature, std::string_view token,
                       std::string_view timestamp, std::string_view nonce,
                       std::string_view encrypt);

// 32-byte PKCS#7: pad value 1..32, every pad byte checked.
std::string pad32(std::string_view data);
Result<std::string> unpad32(std::string_view data);

// Lowercase hex / MD5 helpers (MD5 is what WeCom wants next to reply images).
std::string to_hex(std::string_view bytes);
std::string md5_hex(std::string_view bytes);

// The 32-byte AES key derived from an EncodingAESKey. Wiped on destruction.
class AesKey {
 public:
  // Errors name the problem precisely ("must be 43 characters (got 42)").
  static Result<AesKey> from_encoding_aes_key(std::string_view encoding_aes_key);
  explicit AesKey(const std::array<std::uint8_t, kAesKeyBytes>& bytes) : bytes_(bytes) {}
  AesKey(const AesKey&) = default;
  AesKey& operator=(const AesKey&) = default;
  ~AesKey();

  const std::uint8_t* data() const { return bytes_.data(); }
  const std::uint8_t* iv() const { return bytes_.data(); }  // IV = first 16 key bytes

 private:
  std::array<std::uint8_t, kAesKeyBytes> bytes_{};
};

// Raw AES-256-CBC with the account key and IV; no padding is added or removed.
// `data` length must be a positive multiple of 16.
Result<std::string> aes_cbc_decrypt_raw(const AesKey& key, std::string_view data);
std::string aes_cbc_encrypt_raw(const AesKey& key, std::string_view data);

// Frees the fetched AES/SHA-1 handles the functions above cache. Only for a library that is
// about to unload its private OpenSSL copy: nothing in this module may run afterwards.
void release_algorithm_cache();

// Fills `out` with random bytes; a failure is an internal error.
using RandomSource = std::function<bool(std::uint8_t* out, std::size_t len)>;
bool openssl_random(std::uint8_t* out, std::size_t len);

namespace detail {
class ReusableContexts;
}

// The message crypto of one account: key + expected receiveId. Thread-safe; copies share one
// set of reusable OpenSSL contexts (creating, keying and freeing a context per operation was a
// tenth of a whole stream refresh).
class MessageCrypto {
 public:
  MessageCrypto(AesKey key, std::string receive_id);

  // base64 → AES → unpad32 → strip random16 → read length → check receiveId.
  // Errors: DecryptFailed (with the stage and an SDK code) or ReceiveIdMismatch.
  Result<std::string> decrypt(std::string_view encrypt_base64) const;

  // random16 ‖ be32(len) ‖ message ‖ receiveId → pad32 → AES → base64.
  std::string encrypt(std::string_view message,
                      std::span<const std::uint8_t, kRandomPrefixBytes> random_prefix) const;
  // The same base64 appended to `out` (so a reply envelope can be written around it in one
  // buffer); false (with `out` as it was) when OpenSSL fails.
  bool encrypt_append(std::string& out, std::string_view message,
                      std::span<const std::uint8_t, kRandomPrefixBytes> random_prefix) const;
  // The length of what encrypt() returns for a message of `message_size` bytes.
  std::size_t encrypted_size(std::size_t message_size) const;

  // Media bytes downloaded from WeCom: AES-256-CBC with the same key/IV and 32-byte padding,
  // no framing.
  Result<std::string> decrypt_media(std::string_view ciphertext) const;

  // compute_signature / signature_matches above, with this object's reusable SHA-1 contexts.
  std::string signature(std::string_view token, std::string_view timestamp, std::string_view nonce,
                        std::string_view encrypt) const;
  bool signature_matches(std::string_view signature, std::string_view token, std::string_view timestamp,
                         std::string_view nonce, std::string_view encrypt) const;

  const AesKey& key() const { return key_; }
  const std::string& receive_id() const { return receive_id_; }

 private:
  AesKey key_;
  std::string receive_id_;
  std::shared_ptr<detail::ReusableContexts> contexts_;
};

}  // namespace cwc::crypto
