#include "crypto/crypto.h"

#include "common/text_checks.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <climits>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

namespace cwc::crypto {
namespace {

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

// A few ready OpenSSL contexts that threads borrow and give back, so a request neither
// allocates, keys and frees a context nor takes a lock: borrowing is one atomic exchange. With
// more threads than slots the extra ones get a fresh context, freed again if no slot is free.
template <class Ctx, void (*FreeContext)(Ctx*)>
class ContextSlots {
 public:
  ContextSlots() = default;
  ContextSlots(const ContextSlots&) = delete;
  ContextSlots& operator=(const ContextSlots&) = delete;
  ~ContextSlots() {
    for (auto& slot : slots_) FreeContext(slot.load());  // the EVP frees accept nullptr
  }

  // A context given back earlier, or nullptr when none is free.
  Ctx* take() {
    for (auto& slot : slots_) {
      if (slot.load(std::memory_order_relaxed) == nullptr) continue;
      if (Ctx* ctx = slot.exchange(nullptr, std::memory_order_acquire)) return ctx;
    }
    return nullptr;
  }
  void give(Ctx* ctx) {
    for (auto& slot : slots_) {
      Ctx* empty = nullptr;
      if (slot.compare_exchange_strong(empty, ctx, std::memory_order_release, std::memory_order_relaxed)) return;
    }
    FreeContext(ctx);
  }

 private:
  std::array<std::atomic<Ctx*>, 8> slots_{};
};

// A keyed AES-256-CBC context that is never initialised again after it is made: every message
// it handles continues the CBC stream of the one before (see aes_cbc_in_place). Re-setting the
// IV instead costs a provider call with parameter lookups (EVP_CipherInit_ex2: ~0.1 us, 2-4 %
// of a stream refresh under perf).
struct ChainedCipher {
  EVP_CIPHER_CTX* ctx = nullptr;
  std::array<unsigned char, 16> chain{};  // the block the context chains the next one to
};

void free_chained_cipher(ChainedCipher* cipher) {
  if (cipher == nullptr) return;
  EVP_CIPHER_CTX_free(cipher->ctx);
  OPENSSL_cleanse(cipher->chain.data(), cipher->chain.size());
  delete cipher;
}

using CipherSlots = ContextSlots<ChainedCipher, free_chained_cipher>;
using DigestSlots = ContextSlots<EVP_MD_CTX, EVP_MD_CTX_free>;

}  // namespace

namespace detail {
// One account key's contexts: AES contexts stay keyed (a reuse continues the CBC chain, the key
// schedule is kept), SHA-1 contexts are re-initialised per signature. Freed (and wiped by
// OpenSSL) with the last MessageCrypto copy that shares them.
class ReusableContexts {
 public:
  CipherSlots encrypt;
  CipherSlots decrypt;
  DigestSlots sha1;
};
}  // namespace detail

namespace {

void xor_block(unsigned char* block, const unsigned char* a, const unsigned char* b) {
  for (std::size_t i = 0; i < 16; ++i) block[i] = static_cast<unsigned char>(block[i] ^ a[i] ^ b[i]);
}

// AES-256-CBC over `data` in place (OpenSSL allows in == out), with OpenSSL's own padding
// switched off: WeCom pads to 32 bytes, which we add/check ourselves. `data` is a whole, non-zero
// number of blocks. `contexts` null: a one-off context.
//
// A reused context still chains to the last ciphertext block of its previous message (CBC's IV
// for the next block; OpenSSL keeps it between updates, so that a stream can be fed in pieces).
// Folding that block and WeCom's fixed IV into the first block cancels it exactly:
//   encrypt: C1 = E(P1 ^ iv ^ chain ^ chain) = E(P1 ^ iv);
//   decrypt: D(C1) ^ chain ^ chain ^ iv = P1.
// Every later block chains to this message's own blocks, as CBC does. A fresh context starts
// with chain = iv, so the fold is a no-op.
bool aes_cbc_in_place(detail::ReusableContexts* contexts, const AesKey& key, bool encrypt, std::string& data) {
  constexpr std::size_t kBlock = 16;
  if (data.empty() || data.size() % kBlock != 0 || data.size() > static_cast<std::size_t>(INT_MAX)) return false;
  CipherSlots* slots = contexts ? (encrypt ? &contexts->encrypt : &contexts->decrypt) : nullptr;
  ChainedCipher* cipher = slots ? slots->take() : nullptr;
  bool ok = true;
  if (cipher == nullptr) {
    cipher = new ChainedCipher;
    cipher->ctx = EVP_CIPHER_CTX_new();
    ok = cipher->ctx && EVP_CipherInit_ex2(cipher->ctx, aes_256_cbc(), key.data(), key.iv(), encrypt ? 1 : 0, nullptr) == 1 &&
         EVP_CIPHER_CTX_set_padding(cipher->ctx, 0) == 1;
    std::memcpy(cipher->chain.data(), key.iv(), kBlock);
  }
  auto* bytes = reinterpret_cast<unsigned char*>(data.data());
  const auto* last_block = bytes + data.size() - kBlock;
  std::array<unsigned char, kBlock> next_chain{};
  if (ok && encrypt) xor_block(bytes, key.iv(), cipher->chain.data());
  if (!encrypt) std::memcpy(next_chain.data(), last_block, kBlock);  // the ciphertext, before it is overwritten
  int written = 0;
  // No EVP_CipherFinal_ex: without OpenSSL's padding it has nothing to add, and it would end the
  // stream the next message continues.
  ok = ok && EVP_CipherUpdate(cipher->ctx, bytes, &written, bytes, static_cast<int>(data.size())) == 1 &&
       static_cast<std::size_t>(written) == data.size();
  if (ok) {
    if (encrypt) {
      std::memcpy(cipher->chain.data(), last_block, kBlock);
    } else {
      xor_block(bytes, key.iv(), cipher->chain.data());
      cipher->chain = next_chain;
    }
  }
  // A context that failed is not trusted again.
  if (ok && slots) slots->give(cipher);
  else free_chained_cipher(cipher);
  return ok;
}

using SignatureHex = std::array<char, 40>;

void hex_into(const unsigned char* bytes, std::size_t len, char* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (std::size_t i = 0; i < len; ++i) {
    out[2 * i] = kHex[bytes[i] >> 4];
    out[2 * i + 1] = kHex[bytes[i] & 15];
  }
}

// Lowercase hex SHA-1 over the four strings sorted and concatenated (WeCom's msg_signature).
// `slots` null: a one-off context. False only when OpenSSL fails.
bool signature_hex(DigestSlots* slots, std::string_view token, std::string_view timestamp, std::string_view nonce,
                   std::string_view encrypt, SignatureHex& out) {
  std::array<std::string_view, 4> parts{token, timestamp, nonce, encrypt};
  // Sorted as std::sort with operator< would, but the four parts nearly always differ in their
  // first byte: compared there inline, a memcmp call is left for the rare tie (the sort's
  // memcmp calls were ~2.5 % of a stream refresh under perf).
  std::sort(parts.begin(), parts.end(), [](std::string_view a, std::string_view b) {
    if (!a.empty() && !b.empty() && a.front() != b.front()) {
      return static_cast<unsigned char>(a.front()) < static_cast<unsigned char>(b.front());
    }
    return a < b;
  });
  EVP_MD_CTX* ctx = slots ? slots->take() : nullptr;
  if (!ctx) ctx = EVP_MD_CTX_new();
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  bool ok = ctx && EVP_DigestInit_ex2(ctx, sha1(), nullptr) == 1;
  for (auto part : parts) ok = ok && EVP_DigestUpdate(ctx, part.data(), part.size()) == 1;
  ok = ok && EVP_DigestFinal_ex(ctx, md, &md_len) == 1 && md_len * 2 == out.size();
  if (ok && slots) slots->give(ctx);
  else EVP_MD_CTX_free(ctx);
  if (ok) hex_into(md, md_len, out.data());
  return ok;
}

bool signature_equals(std::string_view received, const SignatureHex& expected) {
  if (received.size() != expected.size()) return false;
  return CRYPTO_memcmp(received.data(), expected.data(), expected.size()) == 0;
}

Error bad_ciphertext_length(std::size_t size) {
  return make_error(ErrorKind::DecryptFailed,
                    "ciphertext length " + std::to_string(size) + " is not a positive multiple of 16", -40007);
}

// The WeCom pad length (1..32) of a decrypted buffer, every pad byte checked.
Result<std::size_t> pad32_length(std::string_view data) {
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
                      "pad value " + std::to_string(pad) + " outside 1..32 (wrong encodingAESKey?)", -40007);
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
    return make_error(ErrorKind::DecryptFailed, "inconsistent padding bytes (wrong encodingAESKey?)", -40007);
  }
  return static_cast<std::size_t>(pad);
}

// Wipes a buffer that held plaintext when it goes out of scope, on every path.
struct WipeOnExit {
  std::string& buffer;
  bool armed = true;
  ~WipeOnExit() {
    if (armed) OPENSSL_cleanse(buffer.data(), buffer.size());
  }
};

void append_base64(std::string& out, std::string_view bytes) {
  const std::size_t start = out.size();
  out.resize(start + (bytes.size() + 2) / 3 * 4 + 1);  // +1: EVP_EncodeBlock writes a NUL
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data() + start),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(start + static_cast<std::size_t>(n));
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out;
  append_base64(out, bytes);
  return out;
}

namespace {

// `strict_pad_bits`: also reject non-zero bits under the '=' padding (see below).
std::optional<std::string> decode_base64(std::string_view text, bool strict_pad_bits) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::size_t padding = 0;
  if (!text.empty() && text.back() == '=') ++padding;
  if (text.size() >= 2 && text[text.size() - 2] == '=') ++padding;
  if (!checks::all_in_alphabet(text.substr(0, text.size() - padding), checks::Alphabet::Base64)) return std::nullopt;
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
  std::string out(bytes.size() * 2, '\0');
  hex_into(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), out.data());
  return out;
}

std::string md5_hex(std::string_view bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), md, &md_len, EVP_md5(), nullptr) != 1) return {};
  std::string out(md_len * 2, '\0');
  hex_into(md, md_len, out.data());
  return out;
}

std::string compute_signature(std::string_view token, std::string_view timestamp,
                              std::string_view nonce, std::string_view encrypt) {
  SignatureHex hex{};
  if (!signature_hex(nullptr, token, timestamp, nonce, encrypt, hex)) return {};
  return std::string(hex.data(), hex.size());
}

bool signature_matches(std::string_view signature, std::string_view token,
                       std::string_view timestamp, std::string_view nonce,
                       std::string_view encrypt) {
  SignatureHex expected{};
  return signature_hex(nullptr, token, timestamp, nonce, encrypt, expected) && signature_equals(signature, expected);
}

std::string pad32(std::string_view data) {
  const std::size_t pad = kPadBlock - data.size() % kPadBlock;  // 1..32
  std::string out(data);
  out.append(pad, static_cast<char>(pad));
  return out;
}

Result<std::string> unpad32(std::string_view data) {
  auto pad = pad32_length(data);
  if (!pad) return pad.error();
  return std::string(data.substr(0, data.size() - *pad));
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
  if (!checks::all_in_alphabet(encoding_aes_key, checks::Alphabet::Base64)) {
    return make_error(ErrorKind::Config, "contains a character outside the base64 alphabet (A-Z a-z 0-9 + /)",
                      -40004);
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
  if (data.empty() || data.size() % 16 != 0) return bad_ciphertext_length(data.size());
  std::string out(data);
  if (!aes_cbc_in_place(nullptr, key, false, out)) {
    return make_error(ErrorKind::DecryptFailed, "AES-256-CBC decryption failed", -40007);
  }
  return out;
}

std::string aes_cbc_encrypt_raw(const AesKey& key, std::string_view data) {
  std::string out(data);
  if (!aes_cbc_in_place(nullptr, key, true, out)) return {};
  return out;
}

bool openssl_random(std::uint8_t* out, std::size_t len) {
  return RAND_bytes(out, static_cast<int>(len)) == 1;
}

MessageCrypto::MessageCrypto(AesKey key, std::string receive_id)
    : key_(std::move(key)),
      receive_id_(std::move(receive_id)),
      contexts_(std::make_shared<detail::ReusableContexts>()) {}

std::string MessageCrypto::signature(std::string_view token, std::string_view timestamp, std::string_view nonce,
                                     std::string_view encrypt) const {
  SignatureHex hex{};
  if (!signature_hex(&contexts_->sha1, token, timestamp, nonce, encrypt, hex)) return {};
  return std::string(hex.data(), hex.size());
}

bool MessageCrypto::signature_matches(std::string_view signature, std::string_view token, std::string_view timestamp,
                                      std::string_view nonce, std::string_view encrypt) const {
  SignatureHex expected{};
  return signature_hex(&contexts_->sha1, token, timestamp, nonce, encrypt, expected) &&
         signature_equals(signature, expected);
}

Result<std::string> MessageCrypto::decrypt(std::string_view encrypt_base64) const {
  // One buffer for the whole way: decoded, decrypted in place, checked, and wiped on return.
  auto decoded = base64_decode(encrypt_base64);
  if (!decoded) {
    return make_error(ErrorKind::DecryptFailed, "encrypt is not valid base64", -40010);
  }
  std::string& buffer = *decoded;
  if (buffer.empty() || buffer.size() % 16 != 0) return bad_ciphertext_length(buffer.size());
  WipeOnExit wipe{buffer};
  if (!aes_cbc_in_place(contexts_.get(), key_, false, buffer)) {
    return make_error(ErrorKind::DecryptFailed, "AES-256-CBC decryption failed", -40007);
  }
  auto pad = pad32_length(buffer);
  if (!pad) return pad.error();
  const std::string_view p(buffer.data(), buffer.size() - *pad);
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
  const std::string_view receive_id = p.substr(kHeader + length);
  if (receive_id != receive_id_) {
    // The configured value is not secret, but the received one may be a corp id: show lengths.
    return make_error(ErrorKind::ReceiveIdMismatch,
                      "message is for receiveId of " + std::to_string(receive_id.size()) +
                          " chars, configured receiveId has " +
                          std::to_string(receive_id_.size()) +
                          " (intelligent bots use \"\")",
                      -40005);
  }
  // The message moved to the front of the buffer it was decrypted in and everything after it
  // wiped: the buffer itself (heap-allocated, at least 32 bytes) is returned, no second copy.
  std::memmove(buffer.data(), buffer.data() + kHeader, length);
  OPENSSL_cleanse(buffer.data() + length, buffer.size() - length);
  buffer.resize(length);
  wipe.armed = false;
  return std::move(buffer);
}

std::size_t MessageCrypto::encrypted_size(std::size_t message_size) const {
  const std::size_t framed = kRandomPrefixBytes + 4 + message_size + receive_id_.size();
  const std::size_t padded = framed + (kPadBlock - framed % kPadBlock);  // 1..32 bytes of pad32
  return (padded + 2) / 3 * 4;
}

std::string MessageCrypto::encrypt(std::string_view message,
                                   std::span<const std::uint8_t, kRandomPrefixBytes> random_prefix) const {
  std::string out;
  if (!encrypt_append(out, message, random_prefix)) return {};
  return out;
}

bool MessageCrypto::encrypt_append(std::string& out, std::string_view message,
                                   std::span<const std::uint8_t, kRandomPrefixBytes> random_prefix) const {
  // Framed, padded and encrypted in one buffer (with 20 KiB answers the copies were a visible
  // part of a reply); what is left in it is ciphertext, wiped only if encryption failed.
  const std::size_t framed = kRandomPrefixBytes + 4 + message.size() + receive_id_.size();
  const std::size_t pad = kPadBlock - framed % kPadBlock;  // 1..32, as pad32
  std::string buffer;
  buffer.reserve(framed + pad);
  buffer.append(reinterpret_cast<const char*>(random_prefix.data()), random_prefix.size());
  const auto n = static_cast<std::uint32_t>(message.size());
  const char length[4] = {static_cast<char>((n >> 24) & 0xff), static_cast<char>((n >> 16) & 0xff),
                          static_cast<char>((n >> 8) & 0xff), static_cast<char>(n & 0xff)};
  buffer.append(length, sizeof length);
  buffer.append(message);
  buffer.append(receive_id_);
  buffer.append(pad, static_cast<char>(pad));
  if (!aes_cbc_in_place(contexts_.get(), key_, true, buffer)) {
    OPENSSL_cleanse(buffer.data(), buffer.size());
    return false;
  }
  append_base64(out, buffer);
  return true;
}

Result<std::string> MessageCrypto::decrypt_media(std::string_view ciphertext) const {
  if (ciphertext.empty() || ciphertext.size() % 16 != 0) return bad_ciphertext_length(ciphertext.size());
  std::string buffer(ciphertext);
  if (!aes_cbc_in_place(contexts_.get(), key_, false, buffer)) {
    return make_error(ErrorKind::DecryptFailed, "AES-256-CBC decryption failed", -40007);
  }
  auto pad = pad32_length(buffer);
  if (!pad) return pad.error();
  buffer.resize(buffer.size() - *pad);
  return buffer;
}

}  // namespace cwc::crypto
