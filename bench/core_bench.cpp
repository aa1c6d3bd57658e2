// Per-message cost of the core: what one inbound WeCom callback and one stream reply cost on
// one core, without HTTP. Run: build/bench/cwc_core_bench (see docs/performance.md).
#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include <array>

#include "core/instance.h"
#include "crypto/crypto.h"
#include "envelope/envelope.h"
#include "message/message.h"
#include "support/fake_host.h"
#include "support/wecom_requests.h"

namespace {

using cwc::testing::kAesKey;
using cwc::testing::kToken;

// A realistic ~300-byte bot text message (the shape of the bot-text-single vector).
const std::string kMessage =
    R"({"msgid":"CAIQz7HL8AUYwbTtqQMgAQ","aibotid":"AIBOTID","chattype":"single","from":{"userid":"zhangsan"},)"
    R"("response_url":"https://qyapi.weixin.qq.com/cgi-bin/aibot/response?response_code=RESPONSECODE",)"
    R"("msgtype":"text","text":{"content":"你好，Clawdbot，请帮我总结一下今天的会议。"}})";

cwc::crypto::MessageCrypto make_crypto() {
  return cwc::crypto::MessageCrypto(*cwc::crypto::AesKey::from_encoding_aes_key(kAesKey), "");
}

// verify signature → base64 → AES → unpad → frame → parse JSON into the message model.
void BM_InboundVerifyDecryptParse(benchmark::State& state) {
  cwc::testing::WecomPeer peer;
  auto req = peer.callback(kMessage);
  auto query = cwc::envelope::parse_signed_query(req.query, false);
  auto crypto = make_crypto();
  for (auto _ : state) {
    auto q = cwc::envelope::parse_signed_query(req.query, false);
    auto env = cwc::envelope::parse_request_envelope(req.body);
    bool ok = cwc::crypto::signature_matches(q->msg_signature, kToken, q->timestamp, q->nonce, env->encrypt());
    auto plain = crypto.decrypt(env->encrypt());
    auto msg = cwc::message::parse_message(*plain);
    benchmark::DoNotOptimize(ok);
    benchmark::DoNotOptimize(msg);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_InboundVerifyDecryptParse);

// build stream JSON → frame → pad → AES → base64 → sign → JSON envelope.
void BM_StreamReplyEncryptSign(benchmark::State& state) {
  auto crypto = make_crypto();
  std::array<std::uint8_t, 16> prefix{};
  const std::string content(static_cast<std::size_t>(state.range(0)), 'a');
  for (auto _ : state) {
    cwc::crypto::openssl_random(prefix.data(), prefix.size());
    const std::string plain = cwc::message::build_stream_reply({"s0123456789abcdef0123456789abcdef", false, content, {}});
    const std::string encrypt = crypto.encrypt(plain, prefix);
    const std::string sig = cwc::crypto::compute_signature(kToken, "1732500000", "8427661", encrypt);
    auto body = cwc::envelope::build_reply_envelope(cwc::envelope::Format::Json, encrypt, sig, "1732500000", "8427661");
    benchmark::DoNotOptimize(body);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_StreamReplyEncryptSign)->Arg(1)->Arg(300)->Arg(4096)->Arg(20480);

// The whole request path of a stream refresh through core::Instance::handle (what the HTTP
// server calls per WeCom poll): route, query, envelope, signature, decrypt, parse, stream
// lookup, reply encrypt + sign.
void BM_InstanceHandleRefresh(benchmark::State& state) {
  cwc::testing::FakeHost host;
  auto created = cwc::core::Instance::create(
      std::string(R"({"token":")") + kToken + R"(","encodingAESKey":")" + kAesKey + R"(","dm":{"policy":"open","allowFrom":["*"]}})", host);
  auto instance = std::move(created.value());
  cwc::testing::WecomPeer peer;
  auto first = peer.callback(kMessage);
  instance->handle({"POST", "/wecom", first.query, "", first.body, ""});
  const std::string stream_id = host.dispatched.at(0).stream_id;
  instance->push(stream_id, std::string(300, 'x'), cwc::stream::PushMode::Append);
  auto refresh = peer.callback(nlohmann::json({{"msgid", "r"}, {"aibotid", "AIBOTID"}, {"chattype", "single"},
                                              {"from", {{"userid", "zhangsan"}}}, {"msgtype", "stream"},
                                              {"stream", {{"id", stream_id}}}})
                                   .dump());
  for (auto _ : state) {
    auto res = instance->handle({"POST", "/wecom", refresh.query, "", refresh.body, ""});
    benchmark::DoNotOptimize(res);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_InstanceHandleRefresh);

// The refresh of BM_InstanceHandleRefresh taken apart: each stage alone, on the same bytes, so
// the stages' sum can be compared with the whole and the biggest one is plain to see.
struct RefreshStages {
  cwc::crypto::MessageCrypto crypto = make_crypto();
  cwc::testing::WecomPeer peer;
  cwc::testing::WecomPeer::Signed request = peer.callback(
      R"({"msgid":"r","aibotid":"AIBOTID","chattype":"single","from":{"userid":"zhangsan"},)"
      R"("msgtype":"stream","stream":{"id":"s0123456789abcdef0123456789abcdef"}})");
  std::string encrypt = std::string(cwc::envelope::parse_request_envelope(request.body)->encrypt());
  std::string request_signature = crypto.signature(kToken, "1732500000", "8427661", encrypt);  // the peer's defaults
  std::string plaintext = *crypto.decrypt(encrypt);
  std::string reply = cwc::message::build_stream_reply({"s0123456789abcdef0123456789abcdef", false, std::string(300, 'x'), {}});
  std::array<std::uint8_t, 16> prefix{};
  std::string reply_encrypt = crypto.encrypt(reply, prefix);
  std::string reply_signature = crypto.signature(kToken, "1732500000", "8427661", reply_encrypt);
};

enum Stage { kQuery, kEnvelope, kVerify, kDecrypt, kParse, kBuildReply, kEncrypt, kSign, kReplyEnvelope };

void BM_RefreshStage(benchmark::State& state) {
  RefreshStages s;
  const auto stage = static_cast<Stage>(state.range(0));
  for (auto _ : state) {
    switch (stage) {
      case kQuery: benchmark::DoNotOptimize(cwc::envelope::parse_signed_query(s.request.query, false)); break;
      case kEnvelope: benchmark::DoNotOptimize(cwc::envelope::parse_request_envelope(s.request.body)); break;
      case kVerify:
        benchmark::DoNotOptimize(s.crypto.signature_matches(s.request_signature, kToken, "1732500000", "8427661", s.encrypt));
        break;
      case kDecrypt: benchmark::DoNotOptimize(s.crypto.decrypt(s.encrypt)); break;
      case kParse: benchmark::DoNotOptimize(cwc::message::parse_message(s.plaintext)); break;
      case kBuildReply:
        benchmark::DoNotOptimize(
            cwc::message::build_stream_reply({"s0123456789abcdef0123456789abcdef", false, std::string(300, 'x'), {}}));
        break;
      case kEncrypt: benchmark::DoNotOptimize(s.crypto.encrypt(s.reply, s.prefix)); break;
      case kSign: benchmark::DoNotOptimize(s.crypto.signature(kToken, "1732500000", "8427661", s.reply_encrypt)); break;
      case kReplyEnvelope:
        benchmark::DoNotOptimize(cwc::envelope::build_reply_envelope(cwc::envelope::Format::Json, s.reply_encrypt,
                                                                     s.reply_signature, "1732500000", "8427661"));
        break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RefreshStage)
    ->ArgName("stage")
    ->Arg(kQuery)
    ->Arg(kEnvelope)
    ->Arg(kVerify)
    ->Arg(kDecrypt)
    ->Arg(kParse)
    ->Arg(kBuildReply)
    ->Arg(kEncrypt)
    ->Arg(kSign)
    ->Arg(kReplyEnvelope);

// The floor: the bare OpenSSL work one refresh needs (SHA-1 of ~250 bytes twice, AES-256-CBC
// decrypt of ~200 bytes and encrypt of ~500 bytes), to show how close the core is to it. Done
// the cheapest way OpenSSL 3 allows: algorithms fetched once, one cipher and one digest context
// reused, so the floor is not inflated by costs the core itself avoids (EVP_aes_256_cbc() and
// EVP_sha1() look the algorithm up on every init: with a new context each time that made this
// floor 1.4 us slower, docs/performance.md).
void BM_OpenSslFloor(benchmark::State& state) {
  auto key = *cwc::crypto::AesKey::from_encoding_aes_key(kAesKey);
  std::string in(512, 'x');
  std::string out(512 + 32, '\0');
  unsigned char md[EVP_MAX_MD_SIZE];
  EVP_CIPHER* aes = EVP_CIPHER_fetch(nullptr, "AES-256-CBC", nullptr);
  EVP_MD* sha1 = EVP_MD_fetch(nullptr, "SHA1", nullptr);
  EVP_CIPHER_CTX* cipher = EVP_CIPHER_CTX_new();
  EVP_MD_CTX* digest = EVP_MD_CTX_new();
  for (auto _ : state) {
    for (std::size_t len : {256u, 512u}) {
      int n = 0;
      EVP_CipherInit_ex2(cipher, aes, key.data(), key.iv(), len == 512 ? 1 : 0, nullptr);
      EVP_CIPHER_CTX_set_padding(cipher, 0);
      EVP_CipherUpdate(cipher, reinterpret_cast<unsigned char*>(out.data()), &n,
                       reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(len));
    }
    for (int i = 0; i < 2; ++i) {
      unsigned int md_len = 0;
      EVP_DigestInit_ex2(digest, sha1, nullptr);
      EVP_DigestUpdate(digest, in.data(), 250);
      EVP_DigestFinal_ex(digest, md, &md_len);
    }
    benchmark::DoNotOptimize(out);
    benchmark::DoNotOptimize(md);
  }
  EVP_MD_CTX_free(digest);
  EVP_CIPHER_CTX_free(cipher);
  EVP_MD_free(sha1);
  EVP_CIPHER_free(aes);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_OpenSslFloor);

}  // namespace

BENCHMARK_MAIN();
