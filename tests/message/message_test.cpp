#include "message/message.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "common/text_checks.h"
#include "message/message_fast_path.h"
#include "support/test_data.h"

namespace cwc::message {
namespace {

TEST(ParseMessage, BotTextVector) {
  auto v = cwc::testing::vector_named("bot-text-single");
  auto msg = parse_message(v["plaintext"].get<std::string>());
  ASSERT_TRUE(msg.ok()) << msg.error().describe();
  EXPECT_EQ(msg->type, MsgType::Text);
  EXPECT_EQ(msg->msgid, "CAIQz7HL8AUYwbTtqQMgAQ");
  EXPECT_EQ(msg->aibotid, "AIBOTID");
  EXPECT_EQ(msg->chattype, ChatType::Single);
  EXPECT_EQ(msg->from_userid, "zhangsan");
  EXPECT_EQ(msg->text, "你好，Clawdbot");
  EXPECT_EQ(msg->response_url, "https://qyapi.weixin.qq.com/cgi-bin/aibot/response?response_code=RESPONSECODE");
}

TEST(ParseMessage, OfficialExampleIsInvalidJsonWithClearError) {
  auto v = cwc::testing::vector_named("official-json-example");
  auto msg = parse_message(v["plaintext"].get<std::string>());
  ASSERT_FALSE(msg.ok());
  EXPECT_EQ(msg.error().kind, ErrorKind::BadMessage);
  EXPECT_EQ(msg.error().describe(), "invalid message: decrypted message is not valid JSON");
}

TEST(ParseMessage, GroupTextWithQuote) {
  auto msg = parse_message(R"({"msgid":"m1","aibotid":"b","chatid":"g1","chattype":"group","from":{"userid":"u1"},
    "msgtype":"text","text":{"content":"@bot hi"},"quote":{"msgtype":"text","text":{"content":"earlier"}}})");
  ASSERT_TRUE(msg.ok());
  EXPECT_EQ(msg->chattype, ChatType::Group);
  EXPECT_EQ(msg->chatid, "g1");
  EXPECT_EQ(msg->text, "@bot hi");
  EXPECT_EQ(msg->quote_text, "earlier");
}

TEST(ParseMessage, MixedKeepsTextsAndImagesInOrder) {
  auto msg = parse_message(R"({"msgid":"m","from":{"userid":"u"},"msgtype":"mixed","mixed":{"msg_item":[
    {"msgtype":"text","text":{"content":"look"}},{"msgtype":"image","image":{"url":"https://x/1"}},
    {"msgtype":"text","text":{"content":"and"}},{"msgtype":"image","image":{"url":"https://x/2"}}]}})");
  ASSERT_TRUE(msg.ok());
  EXPECT_EQ(msg->type, MsgType::Mixed);
  EXPECT_EQ(msg->text, "look\nand");
  ASSERT_EQ(msg->media.size(), 2u);
  EXPECT_EQ(msg->media[1].url, "https://x/2");
}

TEST(ParseMessage, ImageVoiceFileStreamEvent) {
  auto image = parse_message(R"({"msgid":"m","from":{"userid":"u"},"msgtype":"image","image":{"url":"https://i"}})");
  ASSERT_TRUE(image.ok());
  EXPECT_EQ(image->media.at(0).kind, "image");
  auto voice = parse_message(R"({"msgid":"m","from":{"userid":"u"},"msgtype":"voice","voice":{"content":"spoken"}})");
  EXPECT_EQ(voice->text, "spoken");
  auto file = parse_message(R"({"msgid":"m","from":{"userid":"u"},"msgtype":"file","file":{"url":"https://f"}})");
  EXPECT_EQ(file->media.at(0).kind, "file");
  auto stream = parse_message(R"({"msgid":"m2","from":{"userid":"u"},"msgtype":"stream","stream":{"id":"s1"}})");
  EXPECT_EQ(stream->type, MsgType::StreamRefresh);
  EXPECT_EQ(stream->stream_id, "s1");
  auto event = parse_message(R"({"from":{"userid":"u"},"msgtype":"event","event":{"eventtype":"enter_chat"}})");
  ASSERT_TRUE(event.ok());
  EXPECT_EQ(event->event_type, "enter_chat");
}

TEST(ParseMessage, UnknownMsgtypeParsesAsUnsupported) {
  auto msg = parse_message(R"({"msgid":"m","from":{"userid":"u"},"msgtype":"hologram"})");
  ASSERT_TRUE(msg.ok());
  EXPECT_EQ(msg->type, MsgType::Unsupported);
  EXPECT_EQ(msg->msgtype, "hologram");
}

TEST(ParseMessage, RejectsStructurallyBrokenMessages) {
  const char* cases[] = {
      "", "[]", "\"text\"", R"({"from":{"userid":"u"}})",
      R"({"msgid":"m","msgtype":"text","text":{"content":"x"}})",               // no from.userid
      R"({"msgtype":"text","from":{"userid":"u"},"text":{"content":"x"}})",     // no msgid
      R"({"msgid":"m","from":{"userid":"u"},"msgtype":"text"})",                 // no text object
      R"({"msgid":"m","from":{"userid":"u"},"msgtype":"text","text":{"content":5}})",
      R"({"msgid":"m","from":{"userid":"u"},"msgtype":"image","image":{}})",
      R"({"msgid":"m","from":{"userid":"u"},"msgtype":"stream","stream":{}})",
      R"({"msgid":"m","from":{"userid":"u"},"msgtype":"event","event":{}})",
      R"({"msgid":"m","from":{"userid":"u"},"chattype":"weird","msgtype":"text","text":{"content":"x"}})",
      R"({"msgid":["m"],"from":{"userid":"u"},"msgtype":"text","text":{"content":"x"}})",
      R"({"msgid":"m","from":{"userid":"u"},"msgtype":"mixed","mixed":{"msg_item":{}}})",
  };
  for (const char* text : cases) {
    auto msg = parse_message(text);
    ASSERT_FALSE(msg.ok()) << text;
    EXPECT_EQ(msg.error().kind, ErrorKind::BadMessage) << text;
  }
  EXPECT_EQ(parse_message(cases[4]).error().describe(), "invalid message: missing from.userid");
}

TEST(ParseMessage, ClassicXmlMessage) {
  auto msg = parse_message(
      "<xml><ToUserName><![CDATA[ww1]]></ToUserName><FromUserName><![CDATA[lisi]]></FromUserName>"
      "<CreateTime>1</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content>"
      "<MsgId>42</MsgId></xml>");
  ASSERT_TRUE(msg.ok()) << msg.error().describe();
  EXPECT_EQ(msg->from_userid, "lisi");
  EXPECT_EQ(msg->text, "hi");
  EXPECT_EQ(msg->msgid, "42");
}

TEST(Replies, StreamReplyMatchesVectorPlaintextExactly) {
  auto v = cwc::testing::vector_named("bot-stream-reply");
  EXPECT_EQ(build_stream_reply({"stream-0001", false, "1", {}}), v["plaintext"].get<std::string>());
}

TEST(Replies, TextReplyAndUtf8) {
  EXPECT_EQ(build_text_reply("你好"), R"({"msgtype":"text","text":{"content":"你好"}})");
  // Invalid UTF-8 from an agent is replaced, never thrown.
  EXPECT_NO_THROW(build_stream_reply({"s", true, std::string("\xff\xfe", 2), {}}));
}

// Regression (fuzz_message, tests/fuzz/corpus/fuzz_message/regress-xml-surrogate-charref): an
// XML character reference decoded to an invalid UTF-8 surrogate, which then reached the host.
TEST(ParseMessage, XmlCharacterReferencesMustDecodeToValidUtf8) {
  auto msg = parse_message("<xml><FromUserName>u</FromUserName><MsgType>text</MsgType><Content>&#xD800;</Content>"
                           "<MsgId>m</MsgId></xml>");
  ASSERT_FALSE(msg.ok());
  EXPECT_EQ(msg.error().describe(), "invalid message: text is not valid UTF-8");
  auto ok = parse_message("<xml><FromUserName>u</FromUserName><MsgType>text</MsgType><Content>&#x4F60;&#x597D;</Content>"
                          "<MsgId>m</MsgId></xml>");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->text, "你好");
}

// The host only ever receives UTF-8: invalid bytes are rejected, never passed through or repaired.
TEST(ParseMessage, InvalidUtf8IsRejectedWithItsOffset) {
  const std::string text = std::string(R"({"msgid":"m","from":{"userid":"u"},"msgtype":"text","text":{"content":"a)") + "\xC3\x28\"}}";
  auto msg = parse_message(text);
  ASSERT_FALSE(msg.ok());
  EXPECT_EQ(msg.error().describe(),
            "invalid message: decrypted message is not valid UTF-8 (byte " + std::to_string(text.find('\xC3')) + ")");
  auto xml = parse_message(std::string("<xml><FromUserName>u</FromUserName><MsgType>text</MsgType><Content>\xFF</Content><MsgId>m</MsgId></xml>"));
  ASSERT_FALSE(xml.ok());
  EXPECT_NE(xml.error().detail.find("not valid UTF-8"), std::string::npos);
}

TEST(ParseMessage, DeepNestingAndOversizedIdsAreRejected) {
  auto deep = parse_message(R"({"msgtype":"text","x":)" + std::string(100000, '[') + std::string(100000, ']') + "}");
  ASSERT_FALSE(deep.ok());
  EXPECT_EQ(deep.error().describe(), "invalid message: decrypted message nests deeper than 32 levels");
  // XML ids were unbounded (only the JSON path capped msgid).
  auto xml = parse_message("<xml><FromUserName>u</FromUserName><MsgType>text</MsgType><Content>x</Content><MsgId>" +
                           std::string(600, 'm') + "</MsgId></xml>");
  ASSERT_FALSE(xml.ok());
  EXPECT_EQ(xml.error().describe(), "invalid message: msgid is too long");
  auto user = parse_message(R"({"msgid":"m","from":{"userid":")" + std::string(600, 'u') + R"("},"msgtype":"text","text":{"content":"x"}})");
  ASSERT_FALSE(user.ok());
  EXPECT_EQ(user.error().describe(), "invalid message: from.userid is too long");
}

// build_stream_reply writes the common reply directly (performance); it must stay byte-identical
// to the ordered_json serialisation it replaced, escapes and invalid UTF-8 included.
TEST(Replies, StreamReplyFastPathMatchesNlohmann) {
  auto reference = [](const std::string& id, bool finish, const std::string& content) {
    nlohmann::ordered_json doc = {{"msgtype", "stream"},
                                  {"stream", {{"id", id}, {"finish", finish}, {"content", content}}}};
    return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  };
  std::vector<std::string> samples = {"", "1", "echo: 你好，Clawdbot", "quote \" backslash \\ slash /",
                                      "\b\f\n\r\t", std::string("nul\0nul", 7), "\x01\x1f\x7f", "emoji 😀 é",
                                      "\xff\xfe", "cut \xe4\xbd", "\xed\xa0\x80 surrogate", "\xc0\xaf overlong",
                                      std::string(20480, 'a')};
  std::string all_bytes;
  for (int c = 0; c < 256; ++c) all_bytes += static_cast<char>(c);
  samples.push_back(all_bytes);
  std::uint32_t state = 12345;
  for (int n = 0; n < 2000; ++n) {  // random byte soup, mostly ASCII with some high and control bytes
    std::string s;
    const int len = static_cast<int>((state = state * 1103515245u + 12345u) >> 24) % 40;
    for (int i = 0; i < len; ++i) {
      state = state * 1103515245u + 12345u;
      const unsigned r = state >> 16;
      s += static_cast<char>(r % 4 == 0 ? (r >> 8) & 0xff : 0x20 + (r >> 8) % 95);
    }
    samples.push_back(s);
  }
  samples.push_back("完整的中文句子，包含标点。");
  // Every byte that needs escaping (and a few that do not), at every offset across two 8-byte
  // words, in ASCII and in UTF-8 surroundings: the reply writer skips 8 clean bytes at a time.
  for (const char special : {'"', '\\', '\0', '\x01', '\x1f', '\n', ' ', '!', '#', '[', ']', '\x7f'}) {
    for (std::size_t at = 0; at < 20; ++at) {
      std::string ascii(20, 'a');
      ascii[at] = special;
      samples.push_back(ascii);
      std::string utf8 = "é你好😀abcdefghijklmnopqrstu";
      utf8.insert(utf8.begin() + static_cast<std::ptrdiff_t>(at), special);  // 33 bytes long
      samples.push_back(utf8);
    }
  }
  for (const auto& s : samples) {
    for (bool finish : {false, true}) {
      EXPECT_EQ(build_stream_reply({"s0123", finish, s, {}}), reference("s0123", finish, s)) << ::testing::PrintToString(s);
      EXPECT_EQ(build_stream_reply({s, finish, "x", {}}), reference(s, finish, "x")) << ::testing::PrintToString(s);
    }
  }
}

// The single-pass reader (message_fast_path.h) must either give up or agree with the full
// parser exactly. fuzz_message checks that on every fuzzed input; these pin the shapes it must
// take (the hot path) and the ones it must leave alone, and cross-check thousands of mutations.
std::vector<std::string> common_shapes() {
  return {
      cwc::testing::vector_named("bot-text-single")["plaintext"].get<std::string>(),
      R"({"msgid":"m1","aibotid":"b","chatid":"g1","chattype":"group","from":{"userid":"u1"},"msgtype":"text","text":{"content":"@bot hi"}})",
      R"({"msgid":"m","from":{"userid":"u"},"msgtype":"image","image":{"url":"https://i/x?a=1"}})",
      R"({"msgid":"m","from":{"userid":"u"},"msgtype":"file","file":{"url":"https://f"}})",
      R"({"msgid":"m","from":{"userid":"u"},"msgtype":"voice","voice":{"content":"spoken"}})",
      R"({"msgid":"m","aibotid":"b","chattype":"single","from":{"userid":"u"},"msgtype":"stream","stream":{"id":"s0102"}})",
      R"({"msgid":"m","from":{"userid":"u","corpid":"c","extra":{"a":{"b":"c"}}},"msgtype":"text","text":{"content":"tab\tquote\" slash\/ back\\ nl\n"}})",
      R"({"msgid":"m","from":{"userid":"u"},"msgtype":"brand_new_type","brand_new_type":{"x":"y"}})",
      " {\n \"msgid\" : \"m\" ,\r\n\t\"from\":{ \"userid\":\"u\" },\"msgtype\":\"text\",\"text\":{\"content\":\"你好\"} } \n",
  };
}

TEST(CommonJsonFastPath, TakesTheShapesWeComSendsMostAndAgreesWithTheFullParser) {
  for (const std::string& text : common_shapes()) {
    const auto fast = detail::parse_common_json_message(text);
    ASSERT_TRUE(fast.has_value()) << text;
    const auto full = detail::parse_json_message_full(text);
    ASSERT_TRUE(full.ok()) << full.error().describe();
    EXPECT_EQ(*fast, *full) << text;
  }
  const auto escaped = detail::parse_common_json_message(common_shapes()[6]);
  EXPECT_EQ(escaped->text, "tab\tquote\" slash/ back\\ nl\n");
}

TEST(CommonJsonFastPath, LeavesEverythingElseToTheFullParser) {
  const char* const others[] = {
      R"({"msgid":"m","from":{"userid":"u"},"msgtype":"text","text":{"content":"\u4f60"}})",  // \u escape
      R"({"msgid":12,"from":{"userid":"u"},"msgtype":"text","text":{"content":"x"}})",        // number
      R"({"msgid":"m","from":{"userid":"u"},"msgtype":"text","text":{"content":null}})",      // null
      R"({"msgid":"m","from":{"userid":"u"},"msgtype":"text","text":{"content":"x"},"x":true})",
      R"({"msgid":"m","from":{"userid":"u"},"msgtype":"mixed","mixed":{"msg_item":[]}})",     // array
      R"({"msgid":"m","from":{"userid":"u"},"msgtype":"text","text":{"content":"x"},"quote":{"msgtype":"text"}})",
      R"({"msgid":"m","from":{"userid":"u"},"msgtype":"event","event":{"eventtype":"enter_chat"}})",
      R"({"msgtype":"text","msgid":"m","from":{"userid":"u"},"msgtype":"voice","text":{"content":"x"}})",
      R"({"msgid":"m","from":{"userid":"u","userid":"v"},"msgtype":"text","text":{"content":"x"}})",
      R"({"msgid":"m","from":{"userid":"u"},"from":{"userid":"v"},"msgtype":"text","text":{"content":"x"}})",
      R"({"msgid":"m","from":{"userid":"u"},"msgtype":"text","text":{"content":"x"}} trailing)",
      "{\"msgid\":\"m\",\"from\":{\"userid\":\"u\"},\"msgtype\":\"text\",\"text\":{\"content\":\"raw\x01\"}}",
      R"({"msgid":"m","from":{"userid":"u"},"text":{"content":"x"}})",                        // no msgtype
      R"({"msgid":"m","chattype":"channel","from":{"userid":"u"},"msgtype":"text","text":{"content":"x"}})",
      R"({"msgid":"m","from":{"userid":"u"},"msgtype":"text"})",                              // no text object
      R"({"msgid":"m","from":{"userid":"u"},"msgtype":"image","image":{}})",                  // no url
      R"({"msgid":"m","from":{"userid":"u"},"msgtype":"stream","stream":{"id":""}})",
      R"({"msgid":"m","from":"u","msgtype":"text","text":{"content":"x"}})",                  // from not an object
      R"({"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{"i":{"j":"deep"}}}}}}}}},"msgid":"m","from":{"userid":"u"},"msgtype":"text","text":{"content":"x"}})",
      R"({"msgid":"m","from":{"userid":"u"},"msgtype":"text","text":{"content":"x"})",         // truncated
      R"(["not an object"])",
  };
  for (const char* text : others) {
    EXPECT_FALSE(detail::parse_common_json_message(text).has_value()) << text;
  }
  // Ids past the bound are the full parser's error, with its message.
  const std::string long_id(detail::kMaxUrlBytes + 1, 'm');
  const std::string too_long = R"({"msgid":")" + long_id + R"(","from":{"userid":"u"},"msgtype":"text","text":{"content":"x"}})";
  EXPECT_FALSE(detail::parse_common_json_message(too_long).has_value());
  const auto full = parse_message(too_long);
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error().describe(), "invalid message: msgid is too long");
}

TEST(CommonJsonFastPath, AgreesWithTheFullParserOnEveryMutationOfTheCommonShapes) {
  // Truncations, deletions and replacements by JSON's structural bytes at every position of
  // every common shape: wherever the fast path answers, the full parser gives the same message.
  const std::string replacements = "\"\\{}[],: \n\x01x0u/";
  std::size_t answered = 0, checked = 0;
  auto check = [&](const std::string& text) {
    if (!cwc::checks::is_valid_utf8(text)) return;  // parse_message rejects it before either parser
    ++checked;
    const auto fast = detail::parse_common_json_message(text);
    if (!fast) return;
    ++answered;
    const auto full = detail::parse_json_message_full(text);
    ASSERT_TRUE(full.ok()) << "fast path accepted what the full parser rejects: " << text;
    ASSERT_EQ(*fast, *full) << text;
  };
  for (const std::string& base : common_shapes()) {
    for (std::size_t i = 0; i <= base.size(); ++i) {
      check(base.substr(0, i));
      if (i < base.size()) check(base.substr(0, i) + base.substr(i + 1));
      for (const char r : replacements) {
        if (i < base.size()) check(base.substr(0, i) + r + base.substr(i + 1));
        check(base.substr(0, i) + r + base.substr(i));
      }
    }
  }
  EXPECT_GT(checked, 20000u);
  EXPECT_GT(answered, 1000u);  // the comparison above really ran
}

}  // namespace
}  // namespace cwc::message
