#include "envelope/envelope.h"

#include <gtest/gtest.h>

#include "support/reference_query.h"

namespace cwc::envelope {
namespace {

TEST(PercentDecode, DecodesAndKeepsPlus) {
  EXPECT_EQ(*percent_decode("a%2Bb%2f%3D"), "a+b/=");
  EXPECT_EQ(*percent_decode("a+b"), "a+b");  // '+' in base64 echostr must survive
  EXPECT_FALSE(percent_decode("%").has_value());
  EXPECT_FALSE(percent_decode("%4").has_value());
  EXPECT_FALSE(percent_decode("%zz").has_value());
}

TEST(SignedQuery, ParsesAllParams) {
  auto q = parse_signed_query("msg_signature=abc&timestamp=123&nonce=n1&echostr=x%2By", true);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->msg_signature, "abc");
  EXPECT_EQ(q->timestamp, "123");
  EXPECT_EQ(q->nonce, "n1");
  EXPECT_EQ(q->echostr, "x+y");
}

TEST(SignedQuery, NamesEveryMissingParam) {
  auto q = parse_signed_query("timestamp=1", false);
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.error().kind, ErrorKind::MissingQueryParams);
  EXPECT_EQ(q.error().describe(), "missing query params: msg_signature, nonce");
  EXPECT_EQ(q.error().http_status(), 400);
  auto empty = parse_signed_query("", true);
  EXPECT_EQ(empty.error().describe(), "missing query params: msg_signature, timestamp, nonce, echostr");
  auto blank_value = parse_signed_query("msg_signature=&timestamp=1&nonce=2", false);
  EXPECT_EQ(blank_value.error().describe(), "missing query params: msg_signature");
}

TEST(SignedQuery, RejectsDuplicatesBadEncodingAndNonNumericTimestamp) {
  EXPECT_EQ(parse_signed_query("msg_signature=a&msg_signature=b&timestamp=1&nonce=2", false).error().kind,
            ErrorKind::BadQuery);
  EXPECT_EQ(parse_signed_query("msg_signature=a%zz&timestamp=1&nonce=2", false).error().kind, ErrorKind::BadQuery);
  auto ts = parse_signed_query("msg_signature=a&timestamp=12a&nonce=2", false);
  // One documented phrase for every unusable query; the detail names the problem.
  EXPECT_EQ(ts.error().describe(), "missing query params: timestamp is not a decimal number");
  auto huge = parse_signed_query("msg_signature=" + std::string(5000, 'a') + "&timestamp=1&nonce=2", false);
  EXPECT_EQ(huge.error().kind, ErrorKind::BadQuery);
}

TEST(SignedQuery, IgnoresUnrelatedParams) {
  auto q = parse_signed_query("foo=bar&&msg_signature=a&timestamp=1&nonce=2&x", false);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->nonce, "2");
}

TEST(RequestEnvelope, ParsesJsonAndXml) {
  auto json = parse_request_envelope(R"({"encrypt":"QUJD"})");
  ASSERT_TRUE(json.ok());
  EXPECT_EQ(json->format, Format::Json);
  EXPECT_EQ(json->encrypt(), "QUJD");
  auto xml = parse_request_envelope(
      "<xml><ToUserName><![CDATA[ww1]]></ToUserName><Encrypt><![CDATA[QUJD]]></Encrypt><AgentID>1</AgentID></xml>");
  ASSERT_TRUE(xml.ok());
  EXPECT_EQ(xml->format, Format::Xml);
  EXPECT_EQ(xml->encrypt(), "QUJD");
  auto bom = parse_request_envelope("\xEF\xBB\xBF  {\"encrypt\":\"QUJD\"}");
  ASSERT_TRUE(bom.ok());
}

TEST(RequestEnvelope, RejectsMalformedBodies) {
  for (const char* body : {"", "   ", "encrypt=abc", "{", "[1,2]", R"({"encrypt":1})", R"({"encrypt":""})",
                           R"({"other":"x"})", "<xml><Encrypt></Encrypt></xml>", "<xml><A>1</A></xml>",
                           "<xml><Encrypt>abc</xml>"}) {
    auto r = parse_request_envelope(body);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.error().kind, ErrorKind::BadBody) << body;
  }
}

TEST(RequestEnvelope, RejectsDtdAndEntities) {
  auto r = parse_request_envelope(
      "<?xml version=\"1.0\"?><!DOCTYPE xml [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
      "<xml><Encrypt>&x;</Encrypt></xml>");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().detail.find("DTD"), std::string::npos);
  EXPECT_FALSE(parse_request_envelope("<xml><!doctype x><Encrypt>a</Encrypt></xml>").ok());
}

TEST(ReplyEnvelope, JsonRoundTripKeepsDocumentedKeyOrder) {
  const std::string body = build_reply_envelope(Format::Json, "ENC", "SIG", "123", "N");
  EXPECT_EQ(body, R"({"encrypt":"ENC","msgsignature":"SIG","timestamp":"123","nonce":"N"})");
  auto parsed = parse_reply_envelope(body);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->signature, "SIG");
  EXPECT_EQ(parsed->timestamp, "123");
}

TEST(ReplyEnvelope, XmlRoundTrip) {
  const std::string body = build_reply_envelope(Format::Xml, "ENC+/=", "SIG", "123", "N");
  EXPECT_EQ(body,
            "<xml><Encrypt><![CDATA[ENC+/=]]></Encrypt><MsgSignature><![CDATA[SIG]]></MsgSignature>"
            "<TimeStamp>123</TimeStamp><Nonce><![CDATA[N]]></Nonce></xml>");
  auto parsed = parse_reply_envelope(body);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->format, Format::Xml);
  EXPECT_EQ(parsed->encrypt, "ENC+/=");
  EXPECT_EQ(parsed->nonce, "N");
}

// Regression: deep nesting is refused before parsing, with a precise error (a 100000-deep body
// would otherwise cost ~100 bytes of heap per level and recursive walks would overflow the stack).
TEST(RequestEnvelope, RejectsDeepNestingBeforeParsing) {
  const std::string deep = "{\"encrypt\":\"abc\",\"x\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  auto env = parse_request_envelope(deep);
  ASSERT_FALSE(env.ok());
  EXPECT_EQ(env.error().describe(), "invalid body: JSON body nests deeper than 16 levels");
  // Brackets inside strings do not count.
  EXPECT_TRUE(parse_request_envelope("{\"encrypt\":\"" + std::string(100, '[') + "\"}").ok());
  auto reply = parse_reply_envelope("{" + std::string(20, '[') + std::string(20, ']') + "}");
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.error().describe(), "invalid body: reply nests deeper than 16 levels");
}

// Regression: the XML envelopes are UTF-8 only; pugixml must not guess UTF-16/32 from "<\0".
TEST(RequestEnvelope, XmlIsReadAsUtf8Only) {
  const std::string utf16 = std::string("<\0x\0m\0l\0>\0", 10);
  EXPECT_FALSE(parse_request_envelope(utf16).ok());
  EXPECT_FALSE(parse_reply_envelope("<!DOCTYPE x><xml><Encrypt>e</Encrypt><MsgSignature>s</MsgSignature></xml>").ok());
}

// Regression: a badly encoded parameter's name is the sender's text; the error (which becomes a
// log line and the response body) shows it bounded and escaped, under the documented phrase.
TEST(SignedQuery, BadParamNameInErrorsIsEscapedAndBounded) {
  auto q = parse_signed_query("x%0Ay" + std::string(100, 'z') + "=%zz&msg_signature=a&timestamp=1&nonce=2", false);
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.error().describe(), "missing query params: bad percent-encoding in parameter x\\x0ay" +
                                      std::string(26, 'z') + "...");
  auto dup = parse_signed_query("msg_signature=a&msg_signature=a&timestamp=1&nonce=2", false);
  EXPECT_EQ(dup.error().describe(), "missing query params: msg_signature given twice");
}

// The one-pass reader gives exactly what splitting the query into a list and picking from it
// gives: values, or error kind and detail, including which of two problems is named first (an
// undecodable component anywhere wins over a repeated or oversized parameter before it).
TEST(SignedQuery, OnePassReaderAgreesWithTheSplitThenPickReference) {
  const std::string big(4097, 'b');
  const std::string queries[] = {
      "msg_signature=abc&timestamp=123&nonce=n1&echostr=x%2By",
      "msg_signature=a&msg_signature=b&timestamp=1&nonce=2&x=%zz",
      "msg_signature=a&msg_signature=b&timestamp=1&nonce=2%zz",
      "msg_signature=" + big + "&nonce=n&timestamp=1&msg_signature=a",
      "msg_signature=a&timestamp=1&nonce=2&nonce=" + big,
      "msg_signature=a&timestamp=1&nonce=2&echostr=e&echostr=f",
      "msg_signature=a&timestamp=1&nonce=2&echostr=" + big,
      "%6Dsg_signature=a&timestamp=1&non%63e=2&echostr=e",
      "msg_signature=a&timestamp=1&nonce=2&%zz=1",
      "msg_signature&timestamp=1&nonce=2",
      "msg_signature=&timestamp=&nonce=",
      "msg_signature=a=b&timestamp=1&nonce=2&echostr=c==",
      "&&msg_signature=a&&timestamp=0001&&nonce=2&&",
      "msg_signature=a&timestamp=1e3&nonce=2",
      "msg_signature=a&timestamp=123456789012345678901&nonce=2",
      "msg_signature=a&timestamp=%31%32&nonce=%",
      "",
      "=",
      "&",
  };
  for (const std::string& query : queries) {
    for (const bool want_echostr : {false, true}) {
      EXPECT_EQ(cwc::testing::signed_query_difference(parse_signed_query(query, want_echostr),
                                                      cwc::testing::reference_signed_query(query, want_echostr)),
                "")
          << query.substr(0, 80) << " echostr " << want_echostr;
    }
  }
}

// The in-place writer gives byte for byte what build_reply_envelope gives for the same fields,
// and what it signs is exactly the ciphertext appended.
TEST(ReplyEnvelope, InPlaceWriterMatchesBuildReplyEnvelope) {
  const std::string ciphertexts[] = {"", "QUJD", "kM4wFPY5ozW4vXqLwKDTzr6ae3fy8IJa3KWfWvvRyOnUtdRWGjEovPmDXRvDqk2LX==",
                                     std::string(27000, 'A') + "="};
  const std::string nonces[] = {"8427661", "nonce-1_2.3", "quote\"back\\slash", "\xE4\xBD\xA0", std::string(300, 'n')};
  for (const std::string& encrypt : ciphertexts) {
    for (const std::string& nonce : nonces) {
      JsonReplyWriter writer(encrypt.size());
      writer.encrypt_target().append(encrypt);
      EXPECT_EQ(writer.encrypt(), encrypt);
      const std::string written = std::move(writer).finish("0123456789abcdef0123456789abcdef01234567", "1732500000", nonce);
      EXPECT_EQ(written, build_reply_envelope(Format::Json, encrypt, "0123456789abcdef0123456789abcdef01234567",
                                              "1732500000", nonce))
          << nonce;
      auto parsed = parse_reply_envelope(written);
      ASSERT_TRUE(parsed.ok() || encrypt.empty()) << written.substr(0, 100);
      if (parsed.ok()) EXPECT_EQ(parsed->nonce, nonce);
    }
  }
}

// WeCom's usual body is read in place (no copy of the ciphertext); any other form owns its
// ciphertext, which stays valid when the envelope is moved (short values live inside the string).
TEST(RequestEnvelope, UsualBodyIsReadInPlaceOtherFormsOwnTheirCiphertext) {
  const std::string usual = R"({"encrypt":"QUJD"})";
  auto in_place = parse_request_envelope(usual);
  ASSERT_TRUE(in_place.ok());
  EXPECT_EQ(in_place->encrypt().data(), usual.data() + 12);
  for (const std::string body : {std::string(R"({ "encrypt" : "QUJD" })"), std::string("<xml><Encrypt>QUJD</Encrypt></xml>")}) {
    auto parsed = parse_request_envelope(body);
    ASSERT_TRUE(parsed.ok()) << body;
    auto moved = std::move(parsed);
    const Result<RequestEnvelope> moved_again(std::move(*moved));
    EXPECT_EQ(moved_again->encrypt(), "QUJD") << body;
    EXPECT_TRUE(moved_again->encrypt().data() < body.data() || moved_again->encrypt().data() >= body.data() + body.size());
  }
}

// Regression (fuzz_reply_envelope, corpus regress-json-empty-signature): the JSON reply form
// accepted an empty msgsignature/encrypt, which the XML form already rejected.
TEST(ReplyEnvelope, EmptyEncryptOrSignatureIsRejectedInBothForms) {
  EXPECT_FALSE(parse_reply_envelope(R"({"encrypt":"e","msgsignature":"","timestamp":1,"nonce":"n"})").ok());
  EXPECT_FALSE(parse_reply_envelope(R"({"encrypt":"","msgsignature":"s","timestamp":"1","nonce":"n"})").ok());
  EXPECT_TRUE(parse_reply_envelope(R"({"encrypt":"e","msgsignature":"s","timestamp":1,"nonce":"n"})").ok());
  EXPECT_FALSE(parse_reply_envelope("<xml><Encrypt>e</Encrypt><MsgSignature></MsgSignature></xml>").ok());
}

}  // namespace
}  // namespace cwc::envelope
