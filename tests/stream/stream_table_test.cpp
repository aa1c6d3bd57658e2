#include "stream/stream_table.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace cwc::stream {
namespace {

constexpr std::int64_t kTtl = 600'000;
constexpr std::int64_t kWarn = 5'000;

StreamTable make_table(std::size_t max_open = 100) {
  auto counter = std::make_shared<std::atomic<int>>(0);
  return StreamTable(max_open, [counter] { return "s" + std::to_string(++*counter); });
}

TEST(Utf8Prefix, NeverCutsASequence) {
  const std::string zh = "你好";  // 3 bytes each
  EXPECT_EQ(utf8_safe_prefix_length(zh, 6), 6u);
  EXPECT_EQ(utf8_safe_prefix_length(zh, 5), 3u);
  EXPECT_EQ(utf8_safe_prefix_length(zh, 4), 3u);
  EXPECT_EQ(utf8_safe_prefix_length(zh, 3), 3u);
  EXPECT_EQ(utf8_safe_prefix_length(zh, 2), 0u);
  const std::string emoji = "a😀";  // 1 + 4 bytes
  EXPECT_EQ(utf8_safe_prefix_length(emoji, 4), 1u);
  EXPECT_EQ(utf8_safe_prefix_length(emoji, 5), 5u);
  EXPECT_EQ(utf8_safe_prefix_length("abc", 2), 2u);
}

TEST(Utf8Prefix, CapAtWecomLimitWithMultibyteText) {
  std::string text;
  while (text.size() < kMaxContentBytes + 100) text += "汉";
  const std::size_t n = utf8_safe_prefix_length(text, kMaxContentBytes);
  EXPECT_LE(n, kMaxContentBytes);
  EXPECT_EQ(n % 3, 0u);
  EXPECT_GT(n, kMaxContentBytes - 3);
}

TEST(StreamTableTest, OpenDedupesByAccountAndMsgid) {
  auto table = make_table();
  auto first = table.open("a", "m1", 0, kTtl, kWarn);
  ASSERT_TRUE(first);
  EXPECT_TRUE(first->created);
  auto retry = table.open("a", "m1", 10, kTtl, kWarn);
  ASSERT_TRUE(retry);
  EXPECT_FALSE(retry->created);
  EXPECT_EQ(retry->stream_id, first->stream_id);
  auto other_account = table.open("b", "m1", 10, kTtl, kWarn);
  EXPECT_TRUE(other_account->created);
  EXPECT_NE(other_account->stream_id, first->stream_id);
}

TEST(StreamTableTest, ViewsAreCumulativeAndFinish) {
  auto table = make_table();
  auto s = table.open("a", "m1", 0, kTtl, kWarn)->stream_id;
  EXPECT_EQ(table.view("a", s, false, 0)->content, "");
  EXPECT_EQ(table.push(s, "Hello", PushMode::Append), UpdateResult::Ok);
  EXPECT_EQ(table.push(s, ", world", PushMode::Append), UpdateResult::Ok);
  auto v = table.view("a", s, true, 1000);
  EXPECT_EQ(v->content, "Hello, world");
  EXPECT_FALSE(v->finish);
  EXPECT_EQ(table.push(s, "Replaced", PushMode::Replace), UpdateResult::Ok);
  EXPECT_EQ(table.finish(s, FinishKind::Done, ""), UpdateResult::Ok);
  v = table.view("a", s, true, 2000);
  EXPECT_EQ(v->content, "Replaced");
  EXPECT_TRUE(v->finish);
  EXPECT_EQ(table.push(s, "late", PushMode::Append), UpdateResult::Closed);
  EXPECT_EQ(table.finish(s, FinishKind::Done, ""), UpdateResult::Closed);
  EXPECT_EQ(table.push("nope", "x", PushMode::Append), UpdateResult::NotFound);
}

TEST(StreamTableTest, FailureTextIsShownBelowPartialAnswer) {
  auto table = make_table();
  auto s = table.open("a", "m1", 0, kTtl, kWarn)->stream_id;
  table.push(s, "partial", PushMode::Append);
  table.finish(s, FinishKind::Failed, "The model endpoint failed: 500");
  auto v = table.view("a", s, true, 1);
  EXPECT_EQ(v->content, "partial\n\nThe model endpoint failed: 500");
  EXPECT_TRUE(v->finish);
}

TEST(StreamTableTest, UnknownForeignAndExpiredStreamsHaveNoView) {
  auto table = make_table();
  auto s = table.open("a", "m1", 0, kTtl, kWarn)->stream_id;
  EXPECT_FALSE(table.view("a", "unknown", true, 0));
  EXPECT_FALSE(table.view("b", s, true, 0));  // another account's stream
  EXPECT_FALSE(table.view("a", s, true, kTtl));
  auto notices = table.sweep(kTtl).notices;
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_EQ(notices[0].kind, SweepNotice::Kind::Expired);
  EXPECT_EQ(table.size(), 0u);
  // After expiry the msgid is new again.
  EXPECT_TRUE(table.open("a", "m1", kTtl + 1, kTtl, kWarn)->created);
}

TEST(StreamTableTest, ContentCappedUtf8SafeAndOverflowKept) {
  auto table = make_table();
  auto s = table.open("a", "m1", 0, kTtl, kWarn)->stream_id;
  std::string answer;
  while (answer.size() < kMaxContentBytes + 1000) answer += "答";
  table.push(s, answer, PushMode::Append);
  std::optional<Remainder> remainder;
  table.finish(s, FinishKind::Done, "", &remainder);
  auto v = table.view("a", s, true, 1);
  EXPECT_TRUE(v->finish);
  EXPECT_LE(v->content.size(), kMaxContentBytes);
  EXPECT_EQ(v->content.size() % 3, 0u);
  auto rest = table.overflow(s);
  ASSERT_TRUE(rest);
  EXPECT_EQ(v->content + *rest, answer);  // no note configured: the cut is exact
  ASSERT_TRUE(remainder);
  EXPECT_EQ(remainder->text, *rest);
  EXPECT_FALSE(remainder->interrupted);
  EXPECT_TRUE(table.sweep(2).notices.empty());
}

StreamOptions handoff_options(std::int64_t handoff_after_ms, std::string note = "(continued below)") {
  StreamOptions options;
  options.ttl_ms = kTtl;
  options.refresh_warn_ms = kWarn;
  options.handoff_after_ms = handoff_after_ms;
  options.response_url = "https://example.invalid/response";
  options.continued_note = std::move(note);
  return options;
}

TEST(StreamTableTest, LongAnswerShowsNoteAndHandsTheRestOver) {
  auto table = make_table();
  auto s = table.open("a", "m1", 0, handoff_options(0))->stream_id;
  std::string answer;
  while (answer.size() < kMaxContentBytes + 5000) answer += "长答案";
  table.push(s, answer, PushMode::Replace);
  const auto running = table.view("a", s, true, 1);
  EXPECT_FALSE(running->finish);
  std::optional<Remainder> remainder;
  ASSERT_EQ(table.finish(s, FinishKind::Done, "", &remainder), UpdateResult::Ok);
  const auto final_view = table.view("a", s, true, 2);
  EXPECT_TRUE(final_view->finish);
  EXPECT_LE(final_view->content.size(), kMaxContentBytes);
  const std::string suffix = "\n\n(continued below)";
  ASSERT_GE(final_view->content.size(), suffix.size());
  EXPECT_EQ(final_view->content.substr(final_view->content.size() - suffix.size()), suffix);
  const std::string shown = final_view->content.substr(0, final_view->content.size() - suffix.size());
  EXPECT_EQ(running->content, shown) << "the visible part never shrinks at finish";
  ASSERT_TRUE(remainder);
  EXPECT_EQ(shown + remainder->text, answer) << "nothing lost between stream and response_url";
  EXPECT_EQ(remainder->response_url, "https://example.invalid/response");
}

TEST(StreamTableTest, HandoffFinishesTheStreamAndKeepsCollecting) {
  auto table = make_table();
  auto s = table.open("a", "m1", 0, handoff_options(330'000))->stream_id;
  table.push(s, "part one", PushMode::Append);
  EXPECT_TRUE(table.sweep(329'999).notices.empty());
  auto swept = table.sweep(330'000);
  ASSERT_EQ(swept.notices.size(), 1u);
  EXPECT_EQ(swept.notices[0].kind, SweepNotice::Kind::HandedOff);
  auto v = table.view("a", s, true, 330'500);
  EXPECT_TRUE(v->finish);
  EXPECT_EQ(v->content, "part one\n\n(continued below)");
  // The agent keeps going after WeCom saw the stream finish.
  EXPECT_EQ(table.push(s, " and part two", PushMode::Append), UpdateResult::Ok);
  EXPECT_EQ(table.view("a", s, true, 331'000)->content, "part one\n\n(continued below)");
  std::optional<Remainder> remainder;
  ASSERT_EQ(table.finish(s, FinishKind::Done, "", &remainder), UpdateResult::Ok);
  ASSERT_TRUE(remainder);
  EXPECT_EQ(remainder->text, " and part two");
  EXPECT_TRUE(table.sweep(340'000).notices.empty()) << "handed off once";
}

TEST(StreamTableTest, ExpiredUnfinishedStreamYieldsItsUnshownText) {
  auto table = make_table();
  auto s = table.open("a", "m1", 0, handoff_options(1000))->stream_id;
  table.push(s, "shown", PushMode::Append);
  table.sweep(1000);  // handed off with "shown"
  table.push(s, " never finished", PushMode::Append);
  auto swept = table.sweep(kTtl);
  ASSERT_EQ(swept.remainders.size(), 1u);
  EXPECT_EQ(swept.remainders[0].text, " never finished");
  EXPECT_TRUE(swept.remainders[0].interrupted);
  ASSERT_EQ(swept.closed.size(), 1u);
  EXPECT_EQ(swept.closed[0], s);
  EXPECT_EQ(table.size(), 0u);
}

TEST(StreamTableTest, ImagesGoOutOnlyWithTheFinishingReply) {
  auto table = make_table();
  auto s = table.open("a", "m1", 0, kTtl, kWarn)->stream_id;
  ASSERT_EQ(table.attach_image(s, {"aGVsbG8=", "5d41402abc4b2a76b9719d911017c592"}), UpdateResult::Ok);
  EXPECT_TRUE(table.view("a", s, true, 1)->images.empty());
  table.finish(s, FinishKind::Done, "here");
  auto v = table.view("a", s, true, 2);
  ASSERT_EQ(v->images.size(), 1u);
  EXPECT_EQ(v->images[0].md5_hex, "5d41402abc4b2a76b9719d911017c592");
  EXPECT_EQ(table.attach_image(s, {"x", "y"}), UpdateResult::Closed);
  EXPECT_EQ(table.attach_image("nope", {"x", "y"}), UpdateResult::NotFound);
}

TEST(StreamTableTest, WarnsOnceWhenNoRefreshArrives) {
  auto table = make_table();
  auto s = table.open("a", "m1", 0, kTtl, kWarn)->stream_id;
  table.view("a", s, false, 0);  // first reply went out with the placeholder
  EXPECT_TRUE(table.sweep(kWarn - 1).notices.empty());
  auto notices = table.sweep(kWarn).notices;
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_EQ(notices[0].kind, SweepNotice::Kind::RefreshMissing);
  EXPECT_TRUE(table.sweep(kWarn + 1000).notices.empty());

  auto refreshed = table.open("a", "m2", 0, kTtl, kWarn)->stream_id;
  table.view("a", refreshed, false, 0);
  table.view("a", refreshed, true, 1000);
  EXPECT_TRUE(table.sweep(kWarn * 2).notices.empty());
}

TEST(StreamTableTest, BoundEvictsFinishedFirstThenRefuses) {
  auto table = make_table(2);
  auto a = table.open("a", "m1", 0, kTtl, kWarn)->stream_id;
  table.open("a", "m2", 1, kTtl, kWarn);
  table.finish(a, FinishKind::Done, "done");
  auto third = table.open("a", "m3", 2, kTtl, kWarn);
  ASSERT_TRUE(third);  // evicted the finished one
  EXPECT_FALSE(table.view("a", a, true, 3));
  EXPECT_FALSE(table.open("a", "m4", 3, kTtl, kWarn));  // both open streams unfinished
  EXPECT_EQ(table.size(), 2u);
}

TEST(StreamTableTest, EvictsTheOldestFinishedStreamWithoutScanning) {
  auto table = make_table(3);
  auto s1 = table.open("a", "m1", 10, kTtl, kWarn)->stream_id;
  auto s2 = table.open("a", "m2", 20, kTtl, kWarn)->stream_id;
  auto s3 = table.open("a", "m3", 30, kTtl, kWarn)->stream_id;
  table.finish(s2, FinishKind::Done, "b");
  table.finish(s1, FinishKind::Done, "a");  // finished later, but created first
  ASSERT_TRUE(table.open("a", "m4", 40, kTtl, kWarn));
  EXPECT_FALSE(table.view("a", s1, true, 41)) << "the oldest finished stream went first";
  EXPECT_TRUE(table.view("a", s2, true, 41));
  ASSERT_TRUE(table.open("a", "m5", 50, kTtl, kWarn));
  EXPECT_FALSE(table.view("a", s2, true, 51));
  EXPECT_TRUE(table.view("a", s3, true, 51)) << "unfinished streams are never evicted";
  EXPECT_FALSE(table.open("a", "m6", 60, kTtl, kWarn));
  // A swept (expired) finished stream leaves the eviction order too.
  table.finish(s3, FinishKind::Done, "c");
  table.sweep(30 + kTtl);
  EXPECT_EQ(table.size(), 2u);
  auto s7 = table.open("a", "m7", 31 + kTtl, kTtl, kWarn);
  ASSERT_TRUE(s7);  // full again: m4, m5, m7
  table.finish(s7->stream_id, FinishKind::Done, "");
  ASSERT_TRUE(table.open("a", "m8", 32 + kTtl, kTtl, kWarn)) << "evicts m7, not the swept s3";
  EXPECT_FALSE(table.view("a", s7->stream_id, true, 33 + kTtl));
}

TEST(StreamTableTest, ALateRetryNeverReplacesAnExpiredUnfinishedStream) {
  auto table = make_table();
  auto s = table.open("a", "m1", 0, kTtl, kWarn)->stream_id;
  auto retry = table.open("a", "m1", kTtl + 5, kTtl, kWarn);
  ASSERT_TRUE(retry);
  EXPECT_FALSE(retry->created) << "the sweep still owes this stream's unseen text";
  EXPECT_EQ(retry->stream_id, s);
  EXPECT_EQ(table.sweep(kTtl + 6).remainders.size(), 1u);
  EXPECT_TRUE(table.open("a", "m1", kTtl + 7, kTtl, kWarn)->created);
}

TEST(StreamTableTest, ConcurrentPushesAndRefreshes) {
  auto table = make_table(10000);
  std::vector<std::string> ids;
  for (int i = 0; i < 64; ++i) ids.push_back(table.open("a", "m" + std::to_string(i), 0, kTtl, kWarn)->stream_id);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 200; ++round) {
        for (std::size_t i = t; i < ids.size(); i += 4) table.push(ids[i], "x", PushMode::Append);
      }
    });
    threads.emplace_back([&] {
      for (int round = 0; round < 200; ++round) {
        for (const auto& id : ids) table.view("a", id, true, round);
        table.sweep(round);
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& id : ids) EXPECT_EQ(table.view("a", id, true, 1000)->content.size(), 200u);
}

}  // namespace
}  // namespace cwc::stream
