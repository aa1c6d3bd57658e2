#include "crypto/crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <memory>
#include <mutex>
#include <vector>

namespace cwc::crypto {
namespace {

// The base64 alphabet (no '='), as a table: decode_base64 checks every byte of every request.
constexpr std::array<bool, 256> kBase64Alphabet = [] {
  std::array<bool, 256> t{};
  for (int c = 'A'; c <= 'Z'; ++c) t[static_cast<std::size_t>(c)] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[static_cast<std::size_t>(c)] = true;
  for (int c = '0'; c <= '9'; ++c) t[static_cast<std::size_t>(c)] = true;
  t['+'] = t['/'] = true;
  return t;
}();

bool is_base64_char(char c) { return kBase64Alphabet[static_cast<unsigned char>(c)]; }

// OpenSSL 3 resolves EVP_aes_256_cbc()/EVP_sha1() by name on every init (a locked provider
// lookup, ~0.2 µs each). Fetching once and reusing the handle removes that from every request.
// The handles are immutable and shared by all threads: the one process-wide cache in the core.
// release_algorithm_cache() gives them back (the .so does that when it is unloaded).
struct AlgorithmCache {
  std::once_flag once;
  EVP_CIPHER* cipher = nullptr;
  EVP_MD* sha1 = nullptr;
};
AlgorithmCache& algorithm_cache() {
  static AlgorithmCache cache;
  std::call_once(cache.once, [] {
    cache.cipher = EVP_CIPHER_fetch(nullptr, "AES-256-CBC", nullptr);
    cache.sha1 = EVP_MD_fetch(nullptr, "SHA1", nullptr);
  });
  return cache;
}

const EVP_CIPHER* aes_256_cbc() {
  const EVP_CIPHER* fetched = algorithm_cache().cipher;
  return fetched ? fetched : EVP_aes_256_cbc();
}

const EVP_MD* sha1() {
  const EVP_MD* fetched = algorithm_cache().sha1;
  return fetched ? fetched : EVP_sha1();
}

struct CipherCtxDeleter {
  void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter>;

struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;

std::string digest(const EVP_MD* md, std::initializer_list<std::string_view> parts) {
  MdCtx ctx(EVP_MD_CTX_new());
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int out_len = 0;
  if (!ctx || EVP_DigestInit_ex(ctx.get(), md, nullptr) != 1) return {};
  for (auto part : parts) {
    if (EVP_DigestUpdate(ctx.get(), part.data(), part.size()) != 1) return {};
  }
  if (EVP_DigestFinal_ex(ctx.get(), out, &out_len) != 1) return {};
  return std::string(reinterpret_cast<char*>(out), out_len);
}

// AES-256-CBC in one direction with OpenSSL's own padding switched off: WeCom pads to 32 bytes,
// which we add/check ourselves.
bool aes_cbc(const AesKey& key, std::string_view in, bool encrypt, std::string& out) {
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return false;
  if (EVP_CipherInit_ex(ctx.get(), aes_256_cbc(), nullptr, key.data(), key.iv(),
                        encrypt ? 1 : 0) != 1) {
    return false;
  }
  EVP_CIPHER_CTX_set_padding(ctx.get(), 0);
  out.resize(in.size() + 16);
  int written = 0;
  int final_written = 0;
  auto* out_bytes = reinterpret_cast<unsigned char*>(out.data());
  if (EVP_CipherUpdate(ctx.get(), out_bytes, &written,
                       reinterpret_cast<const unsigned char*>(in.data()),
                       static_cast<int>(in.size())) != 1) {
    return false;
  }
  if (EVP_CipherFinal_ex(ctx.get(), out_bytes + written, &final_written) != 1) return false;
  out.resize(static_cast<std::size_t>(written) + static_cast<std::size_t>(final_written));
  return true;
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out((bytes.size() + 2) / 3 * 4 + 1, '\0');  // +1: EVP_EncodeBlock writes a NUL
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

namespace {

// `strict_pad_bits`: also reject non-zero bits under the '=' padding (see below).
std::optional<std::string> decode_base64(std::string_view text, bool strict_pad_bits) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::size_t padding = 0;
  if (!text.empty() && text.back() == '=') ++padding;
  if (text.size() >= 2 && text[text.size() - 2] == '=') ++padding;
  bool alphabet = true;
  for (std::size_t i = 0; i < text.size() - padding; ++i) alphabet &= is_base64_char(text[i]);
  if (!alphabet) return std::nullopt;
  if (text.empty()) return std::string();
  // The bits of the last data character that fall into the padding must be zero; otherwise
  // "...vn5=" and "...vn4=" both decode to the same bytes and the decoder is not the strict,
  // one-text-per-ciphertext one this header promises (found by fuzz_decrypt).
  if (strict_pad_bits && padding > 0) {
    const char last = text[text.size() - padding - 1];
    const int value = last >= 'A' && last <= 'Z'   ? last - 'A'
                      : last >= 'a' && last <= 'z' ? last - 'a' + 26
                      : last >= '0' && last <= '9' ? last - '0' + 52
                      : last == '+'                ? 62
                                                   : 63;
    if ((value & (padding == 1 ? 0x03 : 0x0F)) != 0) return std::nullopt;
  }
  // EVP_DecodeBlock validates the alphabet too, but it tolerates surrounding whitespace and
  // returns padding as zero bytes; the checks above make its input canonical.
  std::string out(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  out.resize(static_cast<std::size_t>(n) - padding);
  return out;
}

}  // namespace

std::optional<std::string> base64_decode(std::string_view text) { return decode_base64(text, true); }

std::string to_hex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(bytes.size() * 2, '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    out[2 * i] = kHex[c >> 4];
    out[2 * i + 1] = kHex[c & 15];
  }
  return out;
}

std::string md5_hex(std::string_view bytes) { return to_hex(digest(EVP_md5(), {bytes})); }

std::string compute_signature(std::string_view token, std::string_view timestamp,
                              std::string_view nonce, std::string_view encrypt) {
  std::array<std::string_view, 4> parts{token, timestamp, nonce, encrypt};
  std::sort(parts.begin(), parts.end());
  return to_hex(digest(sha1(), {parts[0], parts[1], parts[2], parts[3]}));
}

bool signature_matches(std::string_view signature, std::string_view token,
                       std::string_view timestamp, std::string_view nonce,
                       std::string_view encrypt) {
  const std::string expected = compute_signature(token, timestamp, nonce, encrypt);
  if (signature.size() != expected.size()) return false;
  return CRYPTO_memcmp(signature.data(), expected.data(), expected.size()) == 0;
}

std::string pad32(std::string_view data) {
  const std::size_t pad = kPadBlock - data.size() % kPadBlock;  // 1..32
  std::string out(data);
  out.append(pad, static_cast<char>(pad));
  return out;
}

Result<std::string> unpad32(std::string_view data) {
  if (data.empty()) return make_error(ErrorKind::DecryptFailed, "empty plaintext", -40007);
  // WeCom pads to whole 32-byte blocks; AES only guarantees 16. A 48-byte plaintext cannot be
  // WeCom's, whatever its last bytes say (found by fuzz_decrypt: such input was accepted).
  if (data.size() % kPadBlock != 0) {
    return make_error(ErrorKind::DecryptFailed,
                      "padded length " + std::to_string(data.size()) + " is not a multiple of 32", -40007);
  }
  const auto pad = static_cast<unsigned char>(data.back());
  if (pad < 1 || pad > kPadBlock) {
    return make_error(ErrorKind::DecryptFailed,
                      "pad value " + std::to_string(pad) + " outside 1..32 (wrong encodingAESKey?)",
                      -40007);
  }
  if (pad > data.size()) {
    return make_error(ErrorKind::DecryptFailed, "pad longer than plaintext", -40007);
  }
  // Every pad byte must carry the pad value; checking only the last byte accepts garbage.
  unsigned char diff = 0;
  for (std::size_t i = data.size() - pad; i < data.size(); ++i) {
    diff = static_cast<unsigned char>(diff | (static_cast<unsigned char>(data[i]) ^ pad));
  }
  if (diff != 0) {
    return make_error(ErrorKind::DecryptFailed, "inconsistent padding bytes (wrong encodingAESKey?)",
                      -40007);
  }
  return std::string(data.substr(0, data.size() - pad));
}

void release_algorithm_cache() {
  AlgorithmCache& cache = algorithm_cache();
  EVP_CIPHER_free(cache.cipher);
  EVP_MD_free(cache.sha1);
  cache.cipher = nullptr;
  cache.sha1 = nullptr;
}

AesKey::~AesKey() { OPENSSL_cleanse(bytes_.data(), bytes_.size()); }

Result<AesKey> AesKey::from_encoding_aes_key(std::string_view encoding_aes_key) {
  if (encoding_aes_key.size() != kEncodingAesKeyChars) {
    return make_error(ErrorKind::Config,
                      "must be 43 characters (got " + std::to_string(encoding_aes_key.size()) + ")",
                      -40004);
  }
  for (char c : encoding_aes_key) {
    if (!is_base64_char(c)) {
      return make_error(ErrorKind::Config,
                        "contains a character outside the base64 alphabet (A-Z a-z 0-9 + /)",
                        -40004);
    }
  }
  std::string padded(encoding_aes_key);
  padded += '=';
  // Not strict about the pad bits: WeCom's generated keys routinely end in a character whose
  // low bits are set (e.g. "...hUt" + "="); they never change the 32 decoded bytes, and WeCom's
  // own SDKs ignore them too.
  auto decoded = decode_base64(padded, /*strict_pad_bits=*/false);
  if (!decoded || decoded->size() != kAesKeyBytes) {
    return make_error(ErrorKind::Config, "does not decode to a 32-byte AES key", -40004);
  }
  std::array<std::uint8_t, kAesKeyBytes> bytes{};
  std::copy(decoded->begin(), decoded->end(), bytes.begin());
  OPENSSL_cleanse(decoded->data(), decoded->size());
  return AesKey(bytes);
}

Result<std::string> aes_cbc_decrypt_raw(const AesKey& key, std::string_view data) {
  if (data.empty() || data.size() % 16 != 0) {
    return make_error(ErrorKind::DecryptFailed,
                      "ciphertext length " + std::to_string(data.size()) +
                          " is not a positive multiple of 16",
                      -40007);
  }
  std::string out;
  if (!aes_cbc(key, data, false, out)) {
    return make_error(ErrorKind::DecryptFailed, "AES-256-CBC decryption failed", -40007);
  }
  return out;
}

std::string aes_cbc_encrypt_raw(const AesKey& key, std::string_view data) {
  std::string out;
  if (!aes_cbc(key, data, true, out)) return {};
  return out;
}

bool openssl_random(std::uint8_t* out, std::size_t len) {
  return RAND_bytes(out, static_cast<int>(len)) == 1;
}

Result<std::string> MessageCrypto::decrypt(std::string_view encrypt_base64) const {
  auto ciphertext = base64_decode(encrypt_base64);
  if (!ciphertext) {
    return make_error(ErrorKind::DecryptFailed, "encrypt is not valid base64", -40010);
  }
  auto padded = aes_cbc_decrypt_raw(key_, *ciphertext);
  if (!padded) return padded.error();
  auto plain = unpad32(*padded);
  OPENSSL_cleanse(padded->data(), padded->size());
  if (!plain) return plain.error();
  const std::string& p = *plain;
  constexpr std::size_t kHeader = kRandomPrefixBytes + 4;
  if (p.size() < kHeader) {
    return make_error(ErrorKind::DecryptFailed, "plaintext shorter than its 20-byte header", -40008);
  }
  const auto* len_bytes = reinterpret_cast<const unsigned char*>(p.data() + kRandomPrefixBytes);
  const std::size_t length = static_cast<std::size_t>(len_bytes[0]) << 24 |
                             static_cast<std::size_t>(len_bytes[1]) << 16 |
                             static_cast<std::size_t>(len_bytes[2]) << 8 |
                             static_cast<std::size_t>(len_bytes[3]);
  if (length > p.size() - kHeader) {
    return make_error(ErrorKind::DecryptFailed,
                      "length field " + std::to_string(length) + " exceeds the " +
                          std::to_string(p.size() - kHeader) + " bytes that follow",
                      -40008);
  }
  std::string_view receive_id = std::string_view(p).substr(kHeader + length);
  if (receive_id != receive_id_) {
    // The configured value is not secret, but the received one may be a corp id: show lengths.
    return make_error(ErrorKind::ReceiveIdMismatch,
                      "message is for receiveId of " + std::to_string(receive_id.size()) +
                          " chars, configured receiveId has " +
                          std::to_string(receive_id_.size()) +
                          " (intelligent bots use \"\")",
                      -40005);
  }
  return p.substr(kHeader, length);
}

std::string MessageCrypto::encrypt(
    std::string_view message,
    std::span<const std::uint8_t, kRandomPrefixBytes> random_prefix) const {
  // Framed and padded in one buffer (what pad32 would return, without a second full-size copy
  // to build and wipe: with 20 KiB answers the copies were a visible part of a reply).
  const std::size_t framed = kRandomPrefixBytes + 4 + message.size() + receive_id_.size();
  const std::size_t pad = kPadBlock - framed % kPadBlock;  // 1..32, as pad32
  std::string padded;
  padded.reserve(framed + pad);
  padded.append(reinterpret_cast<const char*>(random_prefix.data()), random_prefix.size());
  const auto n = static_cast<std::uint32_t>(message.size());
  padded += static_cast<char>((n >> 24) & 0xff);
  padded += static_cast<char>((n >> 16) & 0xff);
  padded += static_cast<char>((n >> 8) & 0xff);
  padded += static_cast<char>(n & 0xff);
  padded.append(message);
  padded.append(receive_id_);
  padded.append(pad, static_cast<char>(pad));
  std::string encrypted = aes_cbc_encrypt_raw(key_, padded);
  OPENSSL_cleanse(padded.data(), padded.size());
  return base64_encode(encrypted);
}

Result<std::string> MessageCrypto::decrypt_media(std::string_view ciphertext) const {
  auto padded = aes_cbc_decrypt_raw(key_, ciphertext);
  if (!padded) return padded.error();
  return unpad32(*padded);
}

}  // namespace cwc::crypto
