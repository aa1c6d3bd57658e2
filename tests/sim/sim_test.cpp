// wecom-sim: its library (builders, sealing, reply checks, media server) and its binary.
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "integration/process.h"
#include "sim.h"
#include "support/test_data.h"

namespace cwc::sim {
namespace {

using nlohmann::json;
using cwc::testing::run_command;

constexpr const char* kToken = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo";
constexpr const char* kKey = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt";

Wecom wecom(const std::string& receive_id = "") { return std::move(*Wecom::create({kToken, kKey, receive_id})); }

TEST(SimBuilders, ProduceTheDocumentedShapes) {
  Sender single;
  single.user_id = "zhangsan";
  auto text = json::parse(build_text(single, "m1", "你好"));
  EXPECT_EQ(text["msgtype"], "text");
  EXPECT_EQ(text["chattype"], "single");
  EXPECT_FALSE(text.contains("chatid"));
  EXPECT_EQ(text["from"]["userid"], "zhangsan");
  EXPECT_EQ(text["text"]["content"], "你好");
  Sender group;
  group.user_id = "lisi";
  group.chat_id = "CHAT";
  auto refresh = json::parse(build_refresh(group, "m2", "s1"));
  EXPECT_EQ(refresh["chattype"], "group");
  EXPECT_EQ(refresh["chatid"], "CHAT");
  EXPECT_EQ(refresh["stream"]["id"], "s1");
  EXPECT_EQ(json::parse(build_event(single, "m3", "enter_chat"))["event"]["eventtype"], "enter_chat");
  EXPECT_EQ(json::parse(build_media(single, "m4", "file", "http://x"))["file"]["url"], "http://x");
}

TEST(SimSeal, ReproducesTheBotVectorByteForByte) {
  auto v = cwc::testing::vector_named("bot-text-single");
  std::array<std::uint8_t, 16> prefix{};
  const std::string bytes = cwc::testing::hex_to_bytes(v["random_hex"]);
  std::copy(bytes.begin(), bytes.end(), prefix.begin());
  auto sealed = wecom().seal(v["plaintext"].get<std::string>(), v["timestamp"], v["nonce"], prefix);
  EXPECT_EQ(sealed.encrypt, v["encrypt"].get<std::string>());
  EXPECT_EQ(sealed.signature, v["msg_signature"].get<std::string>());
}

TEST(SimSeal, OpenReplyChecksSignatureNonceAndKey) {
  auto w = wecom();
  auto sealed = w.seal("{\"msgtype\":\"stream\"}", "1732500000", "n1");
  const std::string body = envelope::build_reply_envelope(envelope::Format::Json, sealed.encrypt, sealed.signature,
                                                          sealed.timestamp, sealed.nonce);
  EXPECT_EQ(*w.open_reply(body, "n1"), "{\"msgtype\":\"stream\"}");
  EXPECT_NE(w.open_reply(body, "other").error().detail.find("nonce"), std::string::npos);
  const std::string forged = envelope::build_reply_envelope(envelope::Format::Json, sealed.encrypt,
                                                            std::string(40, '0'), sealed.timestamp, sealed.nonce);
  EXPECT_FALSE(w.open_reply(forged, "n1").ok());
  EXPECT_EQ(wecom("ww-corp").open_reply(body, "n1").error().kind, ErrorKind::ReceiveIdMismatch);
  EXPECT_FALSE(Wecom::create({kToken, "short", ""}).ok());
}

TEST(SimMedia, ServesBytesThatDecryptBackToTheFile) {
  auto w = wecom();
  const std::string file = std::string("\x89PNG\r\n\x1a\n", 8) + std::string(1000, '\x7f');
  MediaServer server(w.encrypt_media(file));
  auto url = parse_url(server.url());
  ASSERT_TRUE(url.ok());
  httplib::Client client(url->origin);
  auto res = client.Get(url->path);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  crypto::MessageCrypto decryptor(*crypto::AesKey::from_encoding_aes_key(kKey), "");
  EXPECT_EQ(*decryptor.decrypt_media(res->body), file);
  EXPECT_EQ(server.downloads(), 1);
}

TEST(SimUrl, ParsesOriginAndPath) {
  EXPECT_EQ(parse_url("https://example.com/wecom?x=1")->path, "/wecom");
  EXPECT_EQ(parse_url("http://127.0.0.1:18789")->path, "/");
  EXPECT_EQ(parse_url("http://127.0.0.1:18789/a")->origin, "http://127.0.0.1:18789");
  EXPECT_FALSE(parse_url("127.0.0.1/wecom").ok());
  EXPECT_FALSE(parse_url("ftp://x/y").ok());
}

class SimBinary : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/cwc-sim-XXXXXX";
    dir_ = mkdtemp(pattern);
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  cwc::testing::RunResult sim(std::vector<std::string> args) {
    args.insert(args.begin(), CWC_SIM_BIN);
    return run_command(args, dir_);
  }
  std::filesystem::path dir_;
};

TEST_F(SimBinary, EncryptReproducesVectorAndDecryptReadsIt) {
  auto v = cwc::testing::vector_named("bot-text-single");
  auto enc = sim({"encrypt", "--token", kToken, "--aes-key", kKey, "--random-hex", v["random_hex"], "--timestamp",
                  v["timestamp"], "--nonce", v["nonce"], "--plaintext", v["plaintext"]});
  ASSERT_EQ(enc.code, 0) << enc.err;
  auto out = json::parse(enc.out);
  EXPECT_EQ(out["encrypt"], v["encrypt"]);
  EXPECT_EQ(out["msg_signature"], v["msg_signature"]);
  auto dec = sim({"decrypt", "--token", kToken, "--aes-key", kKey, "--timestamp", v["timestamp"], "--nonce", v["nonce"],
                  "--signature", v["msg_signature"], "--encrypt", v["encrypt"]});
  EXPECT_EQ(dec.code, 0) << dec.err;
  EXPECT_EQ(dec.out, v["plaintext"].get<std::string>() + "\n");
}

TEST_F(SimBinary, ProtocolFailuresExitOneAndUsageErrorsTwo) {
  auto v = cwc::testing::vector_named("verify-url");
  auto wrong_sig = sim({"decrypt", "--token", "WRONG", "--aes-key", kKey, "--timestamp", v["timestamp"], "--nonce",
                        v["nonce"], "--signature", v["msg_signature"], "--encrypt", v["echostr"]});
  EXPECT_EQ(wrong_sig.code, 1);
  EXPECT_NE(wrong_sig.err.find("invalid signature"), std::string::npos);
  auto wrong_rid = sim({"decrypt", "--token", kToken, "--aes-key", kKey, "--timestamp", v["timestamp"], "--nonce",
                        v["nonce"], "--signature", v["msg_signature"], "--encrypt", v["echostr"]});
  EXPECT_EQ(wrong_rid.code, 1);
  EXPECT_NE(wrong_rid.err.find("receiveId mismatch"), std::string::npos) << wrong_rid.err;
  EXPECT_EQ(sim({"send", "--url", "http://127.0.0.1:1/wecom", "--token", kToken, "--aes-key", kKey}).code, 2);
  EXPECT_EQ(sim({"bogus"}).code, 2);
  auto unreachable = sim({"verify-url", "--url", "http://127.0.0.1:1/wecom", "--token", kToken, "--aes-key", kKey});
  EXPECT_EQ(unreachable.code, 1);
  EXPECT_NE(unreachable.err.find("no HTTP answer"), std::string::npos);
  EXPECT_EQ(sim({"--version"}).code, 0);
}

}  // namespace
}  // namespace cwc::sim
