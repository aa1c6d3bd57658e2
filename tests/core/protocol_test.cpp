// The parts of the intelligent-bot protocol beyond text in, stream out: long answers through
// response_url (20480-byte overflow and WeCom's 6-minute refresh window), inbound media
// (download through the host, AES, magic check, file for the agent), per-user in-flight lanes,
// reply images (msg_item) and events for the host.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "crypto/crypto.h"
#include "support/bot_messages.h"

namespace cwc::core {
namespace {

using cwc::testing::config_json;
using cwc::testing::kOpenDm;
using cwc::testing::refresh_message;
using cwc::testing::text_message;
using nlohmann::json;
namespace fs = std::filesystem;

const std::string kPng = std::string("\x89PNG\r\n\x1A\n", 8) + std::string(100, 'p');
const std::string kJpeg = std::string("\xFF\xD8\xFF\xE0", 4) + std::string(200, 'j');

std::string media_message(const std::string& msgid, const std::string& kind, const std::string& url,
                          const std::string& user = "zhangsan") {
  return json({{"msgid", msgid}, {"aibotid", "BOT"}, {"chattype", "single"}, {"from", {{"userid", user}}},
               {"response_url", "https://example.invalid/r"}, {"msgtype", kind}, {kind, {{"url", url}}}})
      .dump();
}

std::string event_message(const std::string& msgid, const std::string& type, const json& payload) {
  return json({{"msgid", msgid}, {"aibotid", "BOT"}, {"chattype", "single"}, {"from", {{"userid", "zhangsan"}}},
               {"msgtype", "event"}, {"event", {{"eventtype", type}, {type, payload}}}})
      .dump();
}

class ProtocolTest : public cwc::testing::InstanceFixture {
 protected:
  void SetUp() override {
    media_dir = fs::temp_directory_path() / ("cwc-protocol-test-" + std::to_string(::getpid()));
    fs::remove_all(media_dir);
    host.fetch_enabled = true;
    make(config_with(""));
  }
  void TearDown() override { fs::remove_all(media_dir); }

  std::string config_with(const std::string& extra) {
    return config_json(std::string(kOpenDm) + R"(,"mediaDir":")" + media_dir.string() + "\"" + extra);
  }

  std::string open_stream(const std::string& msgid, const std::string& text = "hi", const std::string& user = "zhangsan") {
    auto reply = exchange(text_message(msgid, text, user));
    return reply["stream"]["id"].get<std::string>();
  }

  json refresh(const std::string& stream_id) { return exchange(refresh_message(stream_id))["stream"]; }

  std::string encrypted(std::string_view plain) {
    auto key = crypto::AesKey::from_encoding_aes_key(cwc::testing::kAesKey);
    return crypto::aes_cbc_encrypt_raw(*key, crypto::pad32(plain));
  }

  testing::FakeHost::FetchCall last_fetch() {
    std::lock_guard lock(host.mutex);
    EXPECT_FALSE(host.fetches.empty());
    return host.fetches.empty() ? testing::FakeHost::FetchCall{} : host.fetches.back();
  }

  fs::path media_dir;
};

// ------------------------------------------------------------------------------------ long answers

TEST_F(ProtocolTest, AnswerBeyond20480BytesContinuesThroughResponseUrl) {
  const std::string stream_id = open_stream("m1");
  std::string answer;
  while (answer.size() < 30000) answer += "很长的回答。";
  ASSERT_EQ(instance->push(stream_id, answer, stream::PushMode::Replace), stream::UpdateResult::Ok);
  ASSERT_EQ(instance->finish(stream_id, stream::FinishKind::Done, ""), stream::UpdateResult::Ok);

  const json shown = refresh(stream_id);
  EXPECT_TRUE(shown["finish"].get<bool>());
  const std::string content = shown["content"].get<std::string>();
  EXPECT_LE(content.size(), stream::kMaxContentBytes);
  ASSERT_GT(content.size(), 20);
  EXPECT_EQ(content.substr(content.size() - 19), "\n\n(continued below)");

  const auto post = last_fetch();
  EXPECT_EQ(post.method, "POST");
  EXPECT_EQ(post.url, "https://example.invalid/r");
  EXPECT_EQ(post.content_type, "application/json");
  const json body = json::parse(post.body);
  EXPECT_EQ(body["msgtype"], "markdown");
  const std::string rest = body["markdown"]["content"].get<std::string>();
  EXPECT_EQ(content.substr(0, content.size() - 19) + rest, answer) << "stream + response_url = the whole answer";
  EXPECT_EQ(host.count_logs("sending " + std::to_string(rest.size()) + " bytes of the answer through response_url"), 1u);

  ASSERT_TRUE(instance->fetch_done(post.id, FetchOutcome::Ok, 200, R"({"errcode":0,"errmsg":"ok"})", "").ok());
  EXPECT_EQ(host.count_logs("response_url delivered " + std::to_string(rest.size()) + " bytes"), 1u);
  EXPECT_FALSE(instance->fetch_done(post.id, FetchOutcome::Ok, 200, "{}", "").ok()) << "answered once";
}

TEST_F(ProtocolTest, StreamIsHandedOverBeforeWecomsSixMinuteWindow) {
  const std::string stream_id = open_stream("m1");
  instance->push(stream_id, "first part", stream::PushMode::Append);
  host.clock_ms += 329'000;
  instance->tick();
  EXPECT_FALSE(refresh(stream_id)["finish"].get<bool>());
  host.clock_ms += 1'000;  // 330 s = 360 s window - 30 s default margin
  instance->tick();
  EXPECT_EQ(host.count_logs("near WeCom's 6-minute refresh window"), 1u);
  const json handed_off = refresh(stream_id);
  EXPECT_TRUE(handed_off["finish"].get<bool>());
  EXPECT_EQ(handed_off["content"], "first part\n\n(continued below)");
  {
    std::lock_guard lock(host.mutex);
    EXPECT_TRUE(host.fetches.empty()) << "nothing is posted before the agent finishes";
  }
  // The agent keeps answering after WeCom stopped refreshing.
  EXPECT_EQ(instance->push(stream_id, " and the second part", stream::PushMode::Append), stream::UpdateResult::Ok);
  ASSERT_EQ(instance->finish(stream_id, stream::FinishKind::Done, ""), stream::UpdateResult::Ok);
  const json body = json::parse(last_fetch().body);
  EXPECT_EQ(body["markdown"]["content"], " and the second part");
}

TEST_F(ProtocolTest, HandoffMarginIsConfigurable) {
  make(config_with(R"(,"handoffMarginSeconds":60,"continuedText":"（下文续）")"));
  const std::string stream_id = open_stream("m1");
  host.clock_ms += 300'000;
  instance->tick();
  const json shown = refresh(stream_id);
  EXPECT_TRUE(shown["finish"].get<bool>()) << "handed off at 360 - 60 = 300 s";
  EXPECT_EQ(shown["content"], "（下文续）");
}

TEST_F(ProtocolTest, AgentThatNeverFinishesStillDeliversWhatItWrote) {
  const std::string stream_id = open_stream("m1");
  host.clock_ms += 330'000;
  instance->tick();  // handed off with nothing shown
  instance->push(stream_id, "late words", stream::PushMode::Append);
  host.clock_ms += 600'000;  // past streamTtlSeconds
  instance->tick();
  const json body = json::parse(last_fetch().body);
  EXPECT_EQ(body["markdown"]["content"], "late words\n\n(the answer was interrupted)");
}

TEST_F(ProtocolTest, WithoutAHostHttpClientLostTextIsLogged) {
  host.fetch_enabled = false;
  make(config_with(""));
  const std::string stream_id = open_stream("m1");
  instance->push(stream_id, std::string(25000, 'x'), stream::PushMode::Replace);
  instance->finish(stream_id, stream::FinishKind::Done, "");
  EXPECT_EQ(host.count_logs("bytes of the answer were not delivered: the host has no HTTP client", LogLevel::Warn), 1u);
}

TEST_F(ProtocolTest, ResponseUrlCarriesAtMost20480BytesAndLogsTheLoss) {
  const std::string stream_id = open_stream("m1");
  instance->push(stream_id, std::string(60000, 'y'), stream::PushMode::Replace);
  instance->finish(stream_id, stream::FinishKind::Done, "");
  const json body = json::parse(last_fetch().body);
  const std::string content = body["markdown"]["content"].get<std::string>();
  EXPECT_LE(content.size(), 20480u);
  EXPECT_NE(content.find("bytes not delivered: WeCom limit"), std::string::npos);
  EXPECT_EQ(host.count_logs("bytes were not delivered", LogLevel::Warn), 1u);
}

TEST_F(ProtocolTest, ResponseUrlErrorIsLoggedWithWecomsCode) {
  const std::string stream_id = open_stream("m1");
  instance->push(stream_id, std::string(21000, 'z'), stream::PushMode::Replace);
  instance->finish(stream_id, stream::FinishKind::Done, "");
  ASSERT_TRUE(instance->fetch_done(last_fetch().id, FetchOutcome::Ok, 200,
                                   R"({"errcode":600039,"errmsg":"response_url used"})", "")
                  .ok());
  EXPECT_EQ(host.count_logs("response_url errcode 600039 response_url used", LogLevel::Warn), 1u);
}

// ------------------------------------------------------------------------------------------ media

TEST_F(ProtocolTest, ImageIsDownloadedDecryptedCheckedAndHandedOverAsAFile) {
  auto reply = exchange(media_message("img1", "image", "https://wework.qpic.cn/img?x=1"));
  const std::string stream_id = reply["stream"]["id"];
  EXPECT_EQ(reply["stream"]["content"], "1");
  const auto get = last_fetch();
  EXPECT_EQ(get.method, "GET");
  EXPECT_EQ(get.url, "https://wework.qpic.cn/img?x=1");
  EXPECT_EQ(get.max_response_bytes, 20u * 1024 * 1024 + 32);
  EXPECT_EQ(get.timeout_ms, 60'000u);
  EXPECT_TRUE(host.dispatched.empty()) << "the agent gets the image, not a url about to expire";

  ASSERT_TRUE(instance->fetch_done(get.id, FetchOutcome::Ok, 200, encrypted(kPng), "").ok());
  ASSERT_EQ(host.dispatched.size(), 1u);
  const auto& d = host.dispatched[0];
  EXPECT_EQ(d.msgtype, "image");
  EXPECT_EQ(d.stream_id, stream_id);
  const json media = json::parse(d.media_json);
  ASSERT_EQ(media.size(), 1u);
  EXPECT_EQ(media[0]["kind"], "image");
  EXPECT_EQ(media[0]["mime"], "image/png");
  EXPECT_EQ(media[0]["bytes"], kPng.size());
  const fs::path path = media[0]["path"].get<std::string>();
  EXPECT_EQ(path.parent_path(), media_dir / "default");
  std::ifstream in(path, std::ios::binary);
  const std::string stored((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(stored, kPng);
  EXPECT_EQ(fs::status(path).permissions() & fs::perms::others_read, fs::perms::none);
}

TEST_F(ProtocolTest, FailedDownloadsTellTheUserAndNeverReachTheAgent) {
  struct Case {
    FetchOutcome outcome;
    int status;
    std::string body;
    std::string user_sees;
    std::string log;
  };
  const std::vector<Case> cases = {
      {FetchOutcome::Ok, 404, "", "the download failed", "download answered HTTP 404"},
      {FetchOutcome::TooLarge, 0, "", "it is larger than 20 MB", "larger than mediaMaxBytes"},
      {FetchOutcome::Timeout, 0, "", "the download timed out", "download timed out after 60s"},
      {FetchOutcome::Failed, 0, "", "the download failed", "download failed: connection refused"},
      {FetchOutcome::Ok, 200, "not a multiple of sixteen", "it could not be decrypted", "decrypt failed"},
      {FetchOutcome::Ok, 200, "", "it is not a valid image", "decrypted bytes are not an image"},
  };
  int n = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.log);
    const std::string msgid = "bad" + std::to_string(n++);
    const std::string stream_id = exchange(media_message(msgid, "image", "https://x/" + msgid))["stream"]["id"];
    const std::string body = c.body.empty() && c.status == 200 ? encrypted("GIF8 but not quite") : c.body;
    ASSERT_TRUE(instance->fetch_done(last_fetch().id, c.outcome, c.status, body, "connection refused").ok());
    const json shown = refresh(stream_id);
    EXPECT_TRUE(shown["finish"].get<bool>());
    EXPECT_EQ(shown["content"], "⚠️ Could not receive your image: " + c.user_sees + ". Please send it again.");
    EXPECT_EQ(host.count_logs(msgid + ": image 1 not received: " + c.log, LogLevel::Warn), 1u);
  }
  EXPECT_TRUE(host.dispatched.empty());
}

TEST_F(ProtocolTest, FilesOfAnyTypeAreAcceptedWithTheirSniffedMime) {
  exchange(media_message("f1", "file", "https://x/f1"));
  ASSERT_TRUE(instance->fetch_done(last_fetch().id, FetchOutcome::Ok, 200, encrypted("%PDF-1.7 ..."), "").ok());
  ASSERT_EQ(host.dispatched.size(), 1u);
  const json media = json::parse(host.dispatched[0].media_json);
  EXPECT_EQ(media[0]["mime"], "application/pdf");
  EXPECT_EQ(fs::path(media[0]["path"].get<std::string>()).extension(), ".pdf");
}

TEST_F(ProtocolTest, WithoutAHostHttpClientMediaUrlsAreHandedOverAsBefore) {
  host.fetch_enabled = false;
  make(config_with(""));
  exchange(media_message("img1", "image", "https://x/img"));
  ASSERT_EQ(host.dispatched.size(), 1u);
  EXPECT_EQ(json::parse(host.dispatched[0].media_json)[0]["url"], "https://x/img");
}

TEST_F(ProtocolTest, MediaCapIsConfigurable) {
  make(config_with(R"(,"mediaMaxBytes":2048,"mediaTimeoutSeconds":10)"));
  exchange(media_message("img1", "image", "https://x/img"));
  EXPECT_EQ(last_fetch().max_response_bytes, 2048u + 32);
  EXPECT_EQ(last_fetch().timeout_ms, 10'000u);
  const std::string big = kPng + std::string(4096, 'p');
  ASSERT_TRUE(instance->fetch_done(last_fetch().id, FetchOutcome::Ok, 200, encrypted(big), "").ok());
  EXPECT_TRUE(host.dispatched.empty());
  EXPECT_EQ(host.count_logs("larger than mediaMaxBytes 2048"), 1u);
}

// ------------------------------------------------------------------------------ in-flight lanes

TEST_F(ProtocolTest, AtMostThreeMessagesPerUserInFlightTheRestWaitInOrder) {
  std::vector<std::string> streams;
  for (int i = 0; i < 5; ++i) streams.push_back(open_stream("m" + std::to_string(i), "q" + std::to_string(i)));
  ASSERT_EQ(host.dispatched.size(), 3u);
  EXPECT_EQ(host.count_logs("msgid=m3 waits: 3 earlier messages of zhangsan"), 1u);
  open_stream("other", "hello", "lisi");  // another user is not held up
  ASSERT_EQ(host.dispatched.size(), 4u);
  EXPECT_EQ(host.dispatched[3].sender_id, "lisi");

  instance->finish(streams[1], stream::FinishKind::Done, "a1");
  ASSERT_EQ(host.dispatched.size(), 5u);
  EXPECT_EQ(host.dispatched[4].text, "q3");
  instance->finish(streams[0], stream::FinishKind::Failed, "boom");
  ASSERT_EQ(host.dispatched.size(), 6u);
  EXPECT_EQ(host.dispatched[5].text, "q4");
  // A retry of a waiting or running message never runs it twice.
  open_stream("m4", "q4");
  EXPECT_EQ(host.dispatched.size(), 6u);
}

TEST_F(ProtocolTest, AUsersTextNeverOvertakesTheirEarlierImage) {
  exchange(media_message("img", "image", "https://x/img"));
  const auto get = last_fetch();
  open_stream("after", "what is in the picture?");
  EXPECT_TRUE(host.dispatched.empty()) << "the text waits for the image before it";
  ASSERT_TRUE(instance->fetch_done(get.id, FetchOutcome::Ok, 200, encrypted(kJpeg), "").ok());
  ASSERT_EQ(host.dispatched.size(), 2u);
  EXPECT_EQ(host.dispatched[0].msgtype, "image");
  EXPECT_EQ(host.dispatched[1].text, "what is in the picture?");
}

TEST_F(ProtocolTest, ExpiredWaitingMessageFreesItsPlace) {
  make(config_with(R"(,"maxInFlightPerUser":1)"));
  const std::string first = open_stream("m1");
  open_stream("m2");
  ASSERT_EQ(host.dispatched.size(), 1u);
  host.clock_ms += 600'000;
  instance->tick();  // both expire; the waiting one is never dispatched
  EXPECT_EQ(host.dispatched.size(), 1u);
  open_stream("m3");
  EXPECT_EQ(host.dispatched.size(), 2u) << "the lane is free again";
}

// ------------------------------------------------------------------------------ reply images

TEST_F(ProtocolTest, ReplyImagesGoOutAsMsgItemWithTheFinishingReply) {
  const std::string stream_id = open_stream("m1");
  auto attached = instance->attach_image(stream_id, kPng);
  ASSERT_TRUE(attached.ok());
  EXPECT_EQ(*attached, stream::UpdateResult::Ok);
  EXPECT_FALSE(refresh(stream_id).contains("msg_item"));
  instance->finish(stream_id, stream::FinishKind::Done, "here is the chart");
  const json shown = refresh(stream_id);
  ASSERT_TRUE(shown.contains("msg_item"));
  ASSERT_EQ(shown["msg_item"].size(), 1u);
  EXPECT_EQ(shown["msg_item"][0]["msgtype"], "image");
  EXPECT_EQ(shown["msg_item"][0]["image"]["base64"], crypto::base64_encode(kPng));
  EXPECT_EQ(shown["msg_item"][0]["image"]["md5"], crypto::md5_hex(kPng));
}

TEST_F(ProtocolTest, ReplyImageLimitsAreEnforcedWithReasons) {
  const std::string stream_id = open_stream("m1");
  auto gif = instance->attach_image(stream_id, "GIF89a...");
  ASSERT_FALSE(gif.ok());
  EXPECT_NE(gif.error().detail.find("JPEG or PNG"), std::string::npos);
  auto huge = instance->attach_image(stream_id, kPng + std::string(10 * 1024 * 1024, 'x'));
  ASSERT_FALSE(huge.ok());
  EXPECT_NE(huge.error().detail.find("at most 10 MB"), std::string::npos);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(instance->attach_image(stream_id, kJpeg).ok());
  auto eleventh = instance->attach_image(stream_id, kJpeg);
  ASSERT_FALSE(eleventh.ok());
  EXPECT_NE(eleventh.error().detail.find("at most 10 images"), std::string::npos);
  EXPECT_EQ(*instance->attach_image("no-such-stream", kJpeg), stream::UpdateResult::NotFound);
}

// ------------------------------------------------------------------------------------- events

TEST_F(ProtocolTest, FeedbackAndTemplateCardEventsReachTheHostOnce) {
  const json feedback = {{"id", "FEEDBACK_ID"}, {"type", 1}};
  EXPECT_TRUE(exchange(event_message("e1", "feedback_event", feedback)).is_null()) << "no reply";
  exchange(event_message("e1", "feedback_event", feedback));  // WeCom retry
  exchange(event_message("e2", "template_card_event", {{"card_type", "button_interaction"}}));
  std::lock_guard lock(host.mutex);
  ASSERT_EQ(host.events.size(), 2u);
  EXPECT_EQ(host.events[0].event_type, "feedback_event");
  EXPECT_EQ(host.events[0].sender_id, "zhangsan");
  EXPECT_EQ(host.events[0].message_id, "e1");
  EXPECT_EQ(json::parse(host.events[0].event_json)["feedback_event"], feedback);
  EXPECT_EQ(host.events[1].event_type, "template_card_event");
  EXPECT_TRUE(host.dispatched.empty()) << "events never run the agent";
}

}  // namespace
}  // namespace cwc::core
