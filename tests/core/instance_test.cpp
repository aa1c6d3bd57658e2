#include "core/instance.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/fake_host.h"
#include "support/test_data.h"
#include "support/bot_messages.h"
#include "support/wecom_requests.h"

namespace cwc::core {
namespace {

using cwc::testing::FakeHost;
using cwc::testing::WecomPeer;
using nlohmann::json;

using cwc::testing::config_json;
using cwc::testing::kOpenDm;
using cwc::testing::refresh_message;
using cwc::testing::text_message;

using InstanceTest = cwc::testing::InstanceFixture;

TEST_F(InstanceTest, VerifyUrlAnswersBarePlaintext) {
  auto res = instance->handle({"GET", "/wecom", peer.verify_query("1288432023552776189"), "", "", ""});
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body, "1288432023552776189");
  EXPECT_EQ(res.content_type, kContentTypeText);
}

TEST_F(InstanceTest, VerifyUrlOfficialVector) {
  auto v = cwc::testing::vector_named("verify-url");
  FakeHost h;
  auto inst = Instance::create(std::string(R"({"token":")") + v["token"].get<std::string>() +
                                   R"(","encodingAESKey":")" + v["encodingAESKey"].get<std::string>() +
                                   R"(","receiveId":")" + v["receiveId"].get<std::string>() + "\"}",
                               h);
  ASSERT_TRUE(inst.ok());
  const std::string query = "msg_signature=" + v["msg_signature"].get<std::string>() + "&timestamp=" +
                            v["timestamp"].get<std::string>() + "&nonce=" + v["nonce"].get<std::string>() +
                            "&echostr=" + cwc::testing::percent_encode(v["echostr"].get<std::string>());
  auto res = (*inst)->handle({"GET", "/wecom", query, "", "", ""});
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body, v["plaintext"].get<std::string>());
}

// maxTimestampSkewSeconds: off by default (the 2016 VerifyURL vector above still passes); when
// set, a correctly signed request from outside the window is refused after the signature check,
// with one log line that shows both clocks, and nothing is dispatched or opened.
TEST_F(InstanceTest, TimestampWindowRefusesSignedRequestsFromOutsideIt) {
  make(config_json(std::string(kOpenDm) + R"(,"maxTimestampSkewSeconds":300)"));
  const std::int64_t now = host.clock_ms.load() / 1000;
  const auto at = [&](std::int64_t offset) { return std::to_string(now + offset); };

  auto in_window = peer.callback(text_message("m-ok", "hi"), envelope::Format::Json, "8427661", at(-299));
  EXPECT_EQ(instance->handle({"POST", "/wecom", in_window.query, "", in_window.body, ""}).status, 200);
  EXPECT_EQ(host.dispatched.size(), 1u);

  for (const std::int64_t offset : {-301, 301, -86400 * 365}) {
    const std::size_t logs_before = host.logs.size();
    auto stale = peer.callback(text_message("m-" + at(offset), "replayed"), envelope::Format::Json, "8427661", at(offset));
    auto res = instance->handle({"POST", "/wecom", stale.query, "", stale.body, "203.0.113.9"});
    EXPECT_EQ(res.status, 401);
    EXPECT_EQ(res.body.rfind("stale timestamp", 0), 0u) << res.body;
    ASSERT_EQ(host.logs.size(), logs_before + 1);
    const std::string& line = host.logs.back().line;
    EXPECT_NE(line.find(offset > 0 ? "ahead of this host's clock" : "behind this host's clock"), std::string::npos) << line;
    EXPECT_NE(line.find("maxTimestampSkewSeconds 300"), std::string::npos) << line;
  }
  EXPECT_EQ(host.dispatched.size(), 1u);

  // A 20-digit timestamp is far away, not an overflow.
  auto huge = peer.callback(text_message("m-huge", "x"), envelope::Format::Json, "8427661", "99999999999999999999");
  EXPECT_EQ(instance->handle({"POST", "/wecom", huge.query, "", huge.body, ""}).status, 401);

  // VerifyURL is held to the same window (the helper signs with the 2016 vector's timestamp).
  EXPECT_EQ(instance->handle({"GET", "/wecom", peer.verify_query("123"), "", "", ""}).status, 401);
  EXPECT_EQ(instance->handle({"GET", "/wecom", peer.verify_query("123", "47744683", at(5)), "", "", ""}).body, "123");

  // An unsigned request is still refused for its signature, never for its timestamp.
  auto forged = peer.callback(text_message("m-forged", "x"), envelope::Format::Json, "8427661", at(-9999));
  forged.query.replace(forged.query.find("msg_signature=") + 14, 4, "0000");
  EXPECT_EQ(instance->handle({"POST", "/wecom", forged.query, "", forged.body, ""}).body.rfind("invalid signature", 0), 0u);
}

TEST_F(InstanceTest, TimestampWindowRejectsValuesThatLookLikeAUnitMistake) {
  FakeHost h;
  auto created = Instance::create(config_json(R"(,"maxTimestampSkewSeconds":5)"), h);
  ASSERT_FALSE(created.ok());
  EXPECT_NE(created.error().detail.find("maxTimestampSkewSeconds must be 0 (off) or at least 30"), std::string::npos)
      << created.error().detail;
  EXPECT_TRUE(Instance::create(config_json(R"(,"maxTimestampSkewSeconds":0)"), h).ok());
}

TEST_F(InstanceTest, TextMessageOpensStreamDispatchesOnceAndRefreshesCumulatively) {
  auto first = exchange(text_message("m1", "hello"));
  ASSERT_EQ(first["msgtype"], "stream");
  const std::string id = first["stream"]["id"];
  EXPECT_EQ(id.size(), 33u);  // "s" + 32 hex chars of randomness
  EXPECT_EQ(first["stream"]["content"], "1");
  EXPECT_EQ(first["stream"]["finish"], false);
  ASSERT_EQ(host.dispatched.size(), 1u);
  const auto& d = host.dispatched[0];
  EXPECT_EQ(d.target, "wecom:zhangsan");
  EXPECT_EQ(d.sender_id, "zhangsan");
  EXPECT_EQ(d.text, "hello");
  EXPECT_EQ(d.message_id, "m1");
  EXPECT_EQ(d.stream_id, id);
  EXPECT_EQ(d.account_id, "default");
  EXPECT_EQ(d.peer_kind, PeerKind::Direct);
  EXPECT_EQ(d.media_json, "[]");

  instance->push(id, "echo: ", stream::PushMode::Append);
  auto r1 = exchange(refresh_message(id));
  EXPECT_EQ(r1["stream"]["content"], "echo: ");
  EXPECT_EQ(r1["stream"]["finish"], false);
  instance->push(id, "hello", stream::PushMode::Append);
  instance->finish(id, stream::FinishKind::Done, "");
  auto r2 = exchange(refresh_message(id));
  EXPECT_EQ(r2["stream"]["content"], "echo: hello");
  EXPECT_EQ(r2["stream"]["finish"], true);
}

TEST_F(InstanceTest, RetriedMsgidGetsSameStreamAndNoSecondDispatch) {
  auto a = exchange(text_message("dup", "hi"));
  auto b = exchange(text_message("dup", "hi"));
  auto c = exchange(text_message("dup", "hi"));
  EXPECT_EQ(a["stream"]["id"], b["stream"]["id"]);
  EXPECT_EQ(a["stream"]["id"], c["stream"]["id"]);
  EXPECT_EQ(host.dispatched.size(), 1u);
  EXPECT_EQ(host.count_logs("duplicate msgid=dup"), 2u);
}

TEST_F(InstanceTest, GroupMessageTargetsGroup) {
  exchange(text_message("g1m", "@bot hi", "lisi", "CHAT42"));
  ASSERT_EQ(host.dispatched.size(), 1u);
  EXPECT_EQ(host.dispatched[0].target, "wecom:group:CHAT42");
  EXPECT_EQ(host.dispatched[0].peer_kind, PeerKind::Group);
  EXPECT_EQ(host.dispatched[0].chat_id, "CHAT42");
}

TEST_F(InstanceTest, XmlEnvelopeGetsXmlReply) {
  auto res = post(text_message("x1", "hi"), envelope::Format::Xml);
  ASSERT_EQ(res.status, 200);
  EXPECT_EQ(res.content_type, kContentTypeXml);
  EXPECT_EQ(res.body.rfind("<xml><Encrypt>", 0), 0u);
  auto reply = json::parse(peer.open_reply(res.body, "8427661"));
  EXPECT_EQ(reply["msgtype"], "stream");
}

TEST_F(InstanceTest, UnknownStreamRefreshAnswersFinish) {
  auto r = exchange(refresh_message("sdeadbeef"));
  EXPECT_EQ(r["stream"]["id"], "sdeadbeef");
  EXPECT_EQ(r["stream"]["finish"], true);
}

TEST_F(InstanceTest, AgentFailureIsShownAndFinishes) {
  auto first = exchange(text_message("f1", "hi"));
  const std::string id = first["stream"]["id"];
  instance->finish(id, stream::FinishKind::Failed, "The model endpoint failed: 401");
  auto r = exchange(refresh_message(id));
  EXPECT_EQ(r["stream"]["content"], "The model endpoint failed: 401");
  EXPECT_EQ(r["stream"]["finish"], true);
}

TEST_F(InstanceTest, DispatchRefusedFinishesWithApology) {
  host.accept_dispatch = false;
  auto first = exchange(text_message("busy", "hi"));
  EXPECT_EQ(first["stream"]["finish"], true);
  EXPECT_NE(first["stream"]["content"].get<std::string>().find("cannot take messages"), std::string::npos);
  EXPECT_EQ(host.count_logs("host refused", LogLevel::Error), 1u);
}

TEST_F(InstanceTest, EnterChatWelcome) {
  const std::string enter =
      R"({"msgid":"e1","aibotid":"BOT","chattype":"single","from":{"userid":"u"},"msgtype":"event","event":{"eventtype":"enter_chat"}})";
  EXPECT_TRUE(exchange(enter).is_null());  // no welcomeText → empty reply
  make(config_json(std::string(kOpenDm) + R"(,"welcomeText":"你好，我是 Clawdbot。")"));
  auto r = exchange(enter);
  EXPECT_EQ(r["msgtype"], "text");
  EXPECT_EQ(r["text"]["content"], "你好，我是 Clawdbot。");
  EXPECT_TRUE(host.dispatched.empty());
}

TEST_F(InstanceTest, OtherEventsAndUnknownTypesAnswerEmpty) {
  EXPECT_TRUE(exchange(R"({"msgid":"e2","from":{"userid":"u"},"msgtype":"event","event":{"eventtype":"feedback_event"}})").is_null());
  EXPECT_TRUE(exchange(R"({"msgid":"e3","from":{"userid":"u"},"msgtype":"hologram"})").is_null());
  EXPECT_EQ(host.count_logs("unsupported msgtype \"hologram\"", LogLevel::Warn), 1u);
  EXPECT_TRUE(host.dispatched.empty());
}

struct ErrorCase {
  const char* name;
  int status;
  const char* body_prefix;
};

TEST_F(InstanceTest, DocumentedErrorsWithOneLogLineEach) {
  auto good = peer.callback(text_message("e", "x"));
  WecomPeer wrong_token("WRONG");
  WecomPeer wrong_key(cwc::testing::kToken, "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG");
  WecomPeer wrong_receive_id(cwc::testing::kToken, cwc::testing::kAesKey, "ww-corp");
  auto bad_token = wrong_token.callback(text_message("e", "x"));
  auto bad_key = wrong_key.callback(text_message("e", "x"));
  auto bad_rid = wrong_receive_id.callback(text_message("e", "x"));
  auto not_json = peer.callback("not json at all");
  auto other = peer.callback(text_message("other", "a body signed under another query"));
  struct Case {
    HttpRequest request;
    int status;
    std::string body_prefix;
  } cases[] = {
      {{"GET", "/wecom", "", "", "", ""}, 400, "missing query params: msg_signature, timestamp, nonce, echostr"},
      {{"POST", "/wecom", "timestamp=1", "", good.body, ""}, 400, "missing query params: msg_signature, nonce"},
      {{"POST", "/wecom", bad_token.query, "", bad_token.body, ""}, 401, "invalid signature"},
      {{"POST", "/wecom", good.query, "", other.body, ""}, 401, "invalid signature"},
      {{"POST", "/wecom", bad_key.query, "", bad_key.body, ""}, 400, "decrypt failed"},
      {{"POST", "/wecom", bad_rid.query, "", bad_rid.body, ""}, 400, "receiveId mismatch"},
      {{"POST", "/wecom", good.query, "", "garbage", ""}, 400, "invalid body"},
      {{"POST", "/wecom", not_json.query, "", not_json.body, ""}, 400, "invalid message: decrypted message is not valid JSON"},
      {{"PUT", "/wecom", good.query, "", good.body, ""}, 405, "method not allowed"},
      {{"POST", "/elsewhere", good.query, "", good.body, ""}, 404, "not found"},
      {{"POST", "/wecom", good.query, "", std::string(1024 * 1024 + 1, ' '), ""}, 413, "body too large"},
  };
  for (const auto& c : cases) {
    const std::size_t logs_before = host.logs.size();
    auto res = instance->handle(c.request);
    EXPECT_EQ(res.status, c.status) << c.body_prefix;
    EXPECT_EQ(res.body.rfind(c.body_prefix, 0), 0u) << res.body;
    ASSERT_EQ(host.logs.size(), logs_before + 1) << c.body_prefix;
    EXPECT_NE(host.logs.back().line.find(c.body_prefix), std::string::npos) << host.logs.back().line;
  }
  EXPECT_TRUE(host.dispatched.empty());
  // Nothing the bad requests did leaves a trace: the same message is still new and accepted.
  EXPECT_EQ(instance->handle({"POST", "/wecom", good.query, "", good.body, ""}).status, 200);
  EXPECT_EQ(host.dispatched.size(), 1u);
}

TEST_F(InstanceTest, NoSecretsOrPlaintextInLogs) {
  exchange(text_message("s1", "my secret text"));
  WecomPeer wrong_key(cwc::testing::kToken, "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG");
  auto bad = wrong_key.callback(text_message("e", "x"));
  instance->handle({"POST", "/wecom", bad.query, "", bad.body, ""});
  for (const auto& l : host.logs) {
    EXPECT_EQ(l.line.find(cwc::testing::kToken), std::string::npos);
    EXPECT_EQ(l.line.find(cwc::testing::kAesKey), std::string::npos);
    EXPECT_EQ(l.line.find("my secret text"), std::string::npos);
  }
}

TEST_F(InstanceTest, TwoAccountsOnTwoPaths) {
  const std::string key = cwc::testing::kAesKey;
  make(R"({"dm":{"policy":"open","allowFrom":["*"]},"accounts":{"default":{"webhookPath":"/wecom","token":"TOKEN_A","encodingAESKey":")" + key +
       R"("},"team2":{"webhookPath":"/wecom-team2","token":"TOKEN_B","encodingAESKey":")" + key + R"("}}})");
  WecomPeer a("TOKEN_A");
  WecomPeer b("TOKEN_B");
  auto ra = a.callback(text_message("a1", "to a"));
  auto rb = b.callback(text_message("b1", "to b"));
  EXPECT_EQ(instance->handle({"POST", "/wecom", ra.query, "", ra.body, ""}).status, 200);
  EXPECT_EQ(instance->handle({"POST", "/wecom-team2", rb.query, "", rb.body, ""}).status, 200);
  EXPECT_EQ(instance->handle({"POST", "/wecom-team2", ra.query, "", ra.body, ""}).status, 401);
  ASSERT_EQ(host.dispatched.size(), 2u);
  EXPECT_EQ(host.dispatched[0].account_id, "default");
  EXPECT_EQ(host.dispatched[1].account_id, "team2");
  auto routes = json::parse(instance->routes_json());
  ASSERT_EQ(routes.size(), 2u);
  EXPECT_EQ(routes[1]["path"], "/wecom-team2");
  // A refresh for team2's stream sent to the default account is a foreign stream: finish, no content.
  const std::string team2_stream = host.dispatched[1].stream_id;
  instance->push(team2_stream, "secret of team2", stream::PushMode::Append);
  auto foreign = a.callback(refresh_message(team2_stream));
  auto res = instance->handle({"POST", "/wecom", foreign.query, "", foreign.body, ""});
  auto reply = json::parse(a.open_reply(res.body, "8427661"));
  EXPECT_EQ(reply["stream"]["finish"], true);
  EXPECT_EQ(reply["stream"]["content"], "");
}

TEST_F(InstanceTest, StatusAndProbe) {
  exchange(text_message("m1", "hi"));
  auto status = json::parse(instance->status_json());
  EXPECT_EQ(status["accounts"][0]["webhookPath"], "/wecom");
  EXPECT_EQ(status["accounts"][0]["counters"]["messages"], 1);
  EXPECT_EQ(status["accounts"][0]["openStreams"], 1);
  EXPECT_FALSE(status["accounts"][0]["lastInboundAt"].is_null());
  auto probe = instance->probe_json("");
  ASSERT_TRUE(probe.ok());
  auto p = json::parse(*probe);
  EXPECT_EQ(p["ok"], true);
  EXPECT_EQ(p["accounts"][0]["route"]["ok"], true);
  EXPECT_FALSE(instance->probe_json("nope").ok());
}

TEST_F(InstanceTest, TickWarnsWhenRefreshesNeverArrive) {
  exchange(text_message("m1", "hi"));
  host.clock_ms += 6000;
  instance->tick();
  EXPECT_EQ(host.count_logs("stream refresh not received", LogLevel::Warn), 1u);
  instance->tick();
  EXPECT_EQ(host.count_logs("stream refresh not received", LogLevel::Warn), 1u);
}

TEST_F(InstanceTest, StreamsExpireAfterTtl) {
  auto first = exchange(text_message("m1", "hi"));
  host.clock_ms += 600'000;
  instance->tick();
  auto r = exchange(refresh_message(first["stream"]["id"]));
  EXPECT_EQ(r["stream"]["finish"], true);
  EXPECT_EQ(r["stream"]["content"], "");
}

TEST_F(InstanceTest, ReplyTimestampComesFromClockAndNonceFromRequest) {
  auto res = post(text_message("t1", "hi"));
  auto env = envelope::parse_reply_envelope(res.body);
  ASSERT_TRUE(env.ok());
  EXPECT_EQ(env->nonce, "8427661");
  EXPECT_EQ(env->timestamp, "1732500000");
}

TEST_F(InstanceTest, PairingPolicyBlocksUnknownSendersUntilApproved) {
  make(config_json(""));  // default dm.policy: pairing
  auto first = exchange(text_message("p1", "hello?", "newbie"));
  EXPECT_EQ(first["stream"]["finish"], true);
  const std::string content = first["stream"]["content"];
  EXPECT_NE(content.find("Pairing code: "), std::string::npos);
  EXPECT_TRUE(host.dispatched.empty());
  EXPECT_EQ(host.count_logs("pairing code issued to unknown sender newbie"), 1u);
  // A WeCom retry of the same msgid gets the same finished stream and no second log line.
  auto retry = exchange(text_message("p1", "hello?", "newbie"));
  EXPECT_EQ(retry["stream"]["id"], first["stream"]["id"]);
  EXPECT_EQ(host.count_logs("pairing code issued"), 1u);

  auto list = json::parse(*instance->pairing_list_json(""));
  ASSERT_EQ(list["requests"].size(), 1u);
  const std::string code = list["requests"][0]["code"];
  EXPECT_EQ(list["requests"][0]["userId"], "newbie");
  EXPECT_FALSE(instance->pairing_approve("", "NOPE2345").ok());
  auto approved = instance->pairing_approve("", code);
  ASSERT_TRUE(approved.ok());
  EXPECT_EQ(json::parse(*approved)["userId"], "newbie");

  exchange(text_message("p2", "now?", "newbie"));
  ASSERT_EQ(host.dispatched.size(), 1u);
  EXPECT_EQ(host.dispatched[0].text, "now?");
}

TEST_F(InstanceTest, AllowlistRejectsWithConfiguredText) {
  make(config_json(R"(,"dm":{"policy":"allowlist","allowFrom":["boss"]},"rejectText":"No entry.")"));
  auto r = exchange(text_message("a1", "hi", "stranger"));
  EXPECT_EQ(r["stream"]["content"], "No entry.");
  EXPECT_EQ(r["stream"]["finish"], true);
  exchange(text_message("a2", "hi", "boss"));
  ASSERT_EQ(host.dispatched.size(), 1u);
  EXPECT_EQ(host.dispatched[0].sender_id, "boss");
}

TEST_F(InstanceTest, GroupMentionIsStrippedAndDisabledGroupsAnswerNothing) {
  exchange(text_message("gm1", "@Clawdbot summarise", "lisi", "CHAT1"));
  ASSERT_EQ(host.dispatched.size(), 1u);
  EXPECT_EQ(host.dispatched[0].text, "summarise");
  make(config_json(std::string(kOpenDm) + R"(,"groupPolicy":"disabled")"));
  EXPECT_TRUE(exchange(text_message("gm2", "@Clawdbot hi", "lisi", "CHAT1")).is_null());
  EXPECT_EQ(host.count_logs("ignored msgid=gm2: group chats are disabled"), 1u);
  EXPECT_EQ(json::parse(instance->status_json())["streams"], 0);
}

// Regression: log lines carry sender-chosen values (path, event types, ids). A newline in one of
// them used to forge a second log line; now every request logs one escaped, bounded line.
TEST_F(InstanceTest, LogLinesEscapeControlCharactersAndStayBounded) {
  auto res = instance->handle({"GET", "/x\nwecom[default]: 200 ok" + std::string(5000, 'p'), "", "", "", "1.2.3.4"});
  EXPECT_EQ(res.status, 404);
  ASSERT_EQ(host.logs.size(), 1u);
  const std::string& line = host.logs[0].line;
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_NE(line.find("/x\\x0awecom[default]"), std::string::npos) << line;
  EXPECT_LT(line.size(), 400u);

  json event = json::parse(text_message("m1", "x"));
  event["msgtype"] = "event";
  event["event"] = {{"eventtype", "a\r\nb"}};
  host.logs.clear();
  EXPECT_EQ(post(event.dump()).status, 200);
  ASSERT_EQ(host.logs.size(), 1u);
  EXPECT_NE(host.logs[0].line.find("event a\\x0d\\x0ab from zhangsan"), std::string::npos) << host.logs[0].line;
}

// Regression: the method of a rejected request (any bytes) went unescaped into lastError, and
// status_json() then threw on the invalid UTF-8 instead of answering.
TEST_F(InstanceTest, StatusStaysValidAfterARequestWithBinaryMethod) {
  auto res = instance->handle({"\xff\xfe", "/wecom", "", "", "", ""});
  EXPECT_EQ(res.status, 405);
  std::string status;
  ASSERT_NO_THROW(status = instance->status_json());
  EXPECT_NE(json::parse(status)["accounts"][0]["lastError"].get<std::string>().find("\\xff\\xfe /wecom"), std::string::npos);
}

}  // namespace
}  // namespace cwc::core
