// The incremental text/event-stream parser and the chat-completions delta extraction.
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "agents.h"

namespace cwc::gateway {
namespace {

using Events = std::vector<std::string>;

// A realistic chat-completions stream: CRLF and LF line ends mixed, keep-alive comments,
// event/id/retry fields, a multi-line data field, a usage chunk, and the [DONE] sentinel.
const std::string kStream =
    ": OPENROUTER PROCESSING\r\n"
    "\r\n"
    "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\r\n"
    "\r\n"
    "id: 1\n"
    "event: message\n"
    "retry: 1000\n"
    "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n"
    "\n"
    ":keep-alive\n"
    "data:{\"choices\":[{\"delta\":{\"content\":\"lo \\u4f60\\u597d\"}}]}\r\n\r\n"
    "data: first line\n"
    "data:  second line keeps one space\r\n"
    "data:\n"
    "\n"
    "data: {\"choices\":[],\"usage\":{\"total_tokens\":7}}\n\n"
    "data: [DONE]\n\n";

const Events kExpected = {
    R"({"choices":[{"delta":{"role":"assistant"}}]})",
    R"({"choices":[{"delta":{"content":"Hel"}}]})",
    R"({"choices":[{"delta":{"content":"lo \u4f60\u597d"}}]})",
    "first line\n second line keeps one space\n",
    R"({"choices":[],"usage":{"total_tokens":7}})",
    "[DONE]",
};

void append(Events& to, const Events& from) { to.insert(to.end(), from.begin(), from.end()); }

TEST(SseParser, WholeStreamInOneChunk) {
  SseParser parser;
  EXPECT_EQ(parser.feed(kStream), kExpected);
  EXPECT_TRUE(parser.feed("").empty());
}

TEST(SseParser, EveryTwoChunkSplit) {
  const std::string_view stream(kStream);
  for (std::size_t split = 0; split <= stream.size(); ++split) {
    SseParser parser;
    Events events = parser.feed(stream.substr(0, split));
    append(events, parser.feed(stream.substr(split)));
    ASSERT_EQ(events, kExpected) << "split at byte " << split;
  }
}

TEST(SseParser, EveryThreeChunkSplit) {
  const std::string_view stream(kStream);
  for (std::size_t a = 0; a <= stream.size(); ++a) {
    for (std::size_t b = a; b <= stream.size(); ++b) {
      SseParser parser;
      Events events = parser.feed(stream.substr(0, a));
      append(events, parser.feed(stream.substr(a, b - a)));
      append(events, parser.feed(stream.substr(b)));
      ASSERT_EQ(events, kExpected) << "split at bytes " << a << " and " << b;
    }
  }
}

TEST(SseParser, OneByteAtATime) {
  SseParser parser;
  Events events;
  for (std::size_t i = 0; i < kStream.size(); ++i) {
    const Events got = parser.feed(std::string_view(kStream).substr(i, 1));
    // An event is complete exactly when its terminating blank line's '\n' arrives.
    if (!got.empty()) {
      EXPECT_EQ(kStream[i], '\n') << "event dispatched at byte " << i;
    }
    append(events, got);
  }
  EXPECT_EQ(events, kExpected);
}

TEST(SseParser, EventsAreDispatchedOnlyAtTheBlankLine) {
  SseParser parser;
  EXPECT_TRUE(parser.feed("data: a\n").empty());
  EXPECT_TRUE(parser.feed("data: b\r\n").empty());
  EXPECT_TRUE(parser.feed("\r").empty());  // CR of the blank line alone is not enough
  EXPECT_EQ(parser.feed("\n"), Events{"a\nb"});
  // An event cut off by the end of the stream (no blank line) is never dispatched.
  EXPECT_TRUE(parser.feed("data: unfinished").empty());
  EXPECT_TRUE(parser.feed("\n").empty());
}

TEST(SseParser, CommentsAndFieldsOtherThanDataCarryNothing) {
  SseParser parser;
  EXPECT_TRUE(parser.feed(": ping\n\n:\n\nevent: x\nid: 7\nretry: 5\n\n").empty());
  EXPECT_EQ(parser.feed("event: delta\ndata: x\n\n"), Events{"x"});
}

TEST(SseParser, EmptyDataEventsAreNotDispatched) {
  // The SSE spec drops an event whose data buffer is empty; a "data:" keep-alive must not reach
  // the JSON decoder (it would fail the answer as a malformed payload).
  SseParser parser;
  EXPECT_TRUE(parser.feed("data:\n\n").empty());
  EXPECT_TRUE(parser.feed("data: \r\n\r\n").empty());
  EXPECT_EQ(parser.feed("data: [DONE]\n\n"), Events{"[DONE]"});
}

// ---------------------------------------------------------------------------------------------

TEST(SseDeltaContent, ContentDeltas) {
  std::string error;
  EXPECT_EQ(extract_delta_content(R"({"choices":[{"index":0,"delta":{"content":"Hi"}}]})", &error), "Hi");
  EXPECT_EQ(extract_delta_content(R"({"choices":[{"delta":{"content":"\u4f60\u597d \"q\"\n"}}]})", &error),
            "\xe4\xbd\xa0\xe5\xa5\xbd \"q\"\n");
  EXPECT_EQ(extract_delta_content(R"({"choices":[{"delta":{"role":"assistant","content":"first"}}]})", &error),
            "first");
  EXPECT_TRUE(error.empty());
  // A caller that does not want the error may pass nullptr.
  EXPECT_EQ(extract_delta_content(R"({"choices":[{"delta":{"content":"x"}}]})", nullptr), "x");
}

TEST(SseDeltaContent, NonContentChunksAreEmpty) {
  std::string error;
  EXPECT_EQ(extract_delta_content(R"({"choices":[{"delta":{"role":"assistant"}}]})", &error), "");
  EXPECT_EQ(extract_delta_content(R"({"choices":[{"delta":{"role":"assistant","content":""}}]})", &error), "");
  EXPECT_EQ(extract_delta_content(R"({"choices":[{"delta":{"content":null}}]})", &error), "");
  EXPECT_EQ(extract_delta_content(R"({"choices":[{"delta":{}, "finish_reason":"stop"}]})", &error), "");
  EXPECT_EQ(extract_delta_content(R"({"choices":[],"usage":{"total_tokens":3}})", &error), "");
  EXPECT_EQ(extract_delta_content(R"({"choices":{"delta":{"content":"x"}}})", &error), "");
  EXPECT_EQ(extract_delta_content(R"({"choices":[{"delta":"x"}]})", &error), "");
  EXPECT_EQ(extract_delta_content(R"({"choices":[{"delta":{"content":42}}]})", &error), "");
  EXPECT_EQ(extract_delta_content("[1,2]", &error), "");
  EXPECT_EQ(extract_delta_content("7", &error), "");
  EXPECT_TRUE(error.empty()) << error;
}

TEST(SseDeltaContent, ReasoningContentIsIgnored) {
  std::string error;
  EXPECT_EQ(extract_delta_content(R"({"choices":[{"delta":{"reasoning_content":"let me think"}}]})", &error), "");
  EXPECT_EQ(extract_delta_content(R"({"choices":[{"delta":{"reasoning":"hmm","thinking":"hmm"}}]})", &error), "");
  EXPECT_EQ(extract_delta_content(R"({"choices":[{"delta":{"reasoning_content":"think","content":"answer"}}]})",
                                  &error),
            "answer");
  EXPECT_TRUE(error.empty());
}

TEST(SseDeltaContent, ErrorPayloadSetsTheError) {
  std::string error;
  EXPECT_EQ(extract_delta_content(R"({"error":{"message":"Rate limit reached","type":"requests"}})", &error), "");
  EXPECT_EQ(error, "Rate limit reached");
  error.clear();
  // Without a message the event itself is shown (bounded); a plain string is its own message.
  EXPECT_EQ(extract_delta_content(R"({"error":{"code":500}})", &error), "");
  EXPECT_EQ(error, "error event {\"code\":500}");
  error.clear();
  EXPECT_EQ(extract_delta_content(R"({"error":"overloaded"})", &error), "");
  EXPECT_EQ(error, "overloaded");
  error.clear();
  // "error": null in an ordinary chunk is not an error.
  EXPECT_EQ(extract_delta_content(R"({"error":null,"choices":[{"delta":{"content":"ok"}}]})", &error), "ok");
  EXPECT_TRUE(error.empty());
}

TEST(SseDeltaContent, MalformedJsonSetsTheError) {
  for (const char* payload : {"{not json", "", "{\"choices\":[", "data: {}", "[DONE"}) {
    std::string error;
    EXPECT_EQ(extract_delta_content(payload, &error), "") << payload;
    EXPECT_EQ(error, "malformed SSE payload from the model endpoint") << payload;
  }
  EXPECT_EQ(extract_delta_content("{not json", nullptr), "");  // and nullptr is tolerated
}

}  // namespace
}  // namespace cwc::gateway
