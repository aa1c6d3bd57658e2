#include "policy/policy.h"

#include <gtest/gtest.h>

#include "support/fake_host.h"

namespace cwc::policy {
namespace {

using cwc::testing::FakeHost;

config::AccountConfig account(config::DmPolicy dm = config::DmPolicy::Pairing) {
  config::AccountConfig a;
  a.id = "default";
  a.token = "T";
  a.dm_policy = dm;
  return a;
}

message::Message dm_from(const std::string& user) {
  message::Message m;
  m.type = message::MsgType::Text;
  m.msgid = "m-" + user;
  m.from_userid = user;
  m.text = "hi";
  return m;
}

message::Message group_msg(const std::string& chat, const std::string& user, const std::string& text = "@bot hi") {
  message::Message m = dm_from(user);
  m.chattype = message::ChatType::Group;
  m.chatid = chat;
  m.text = text;
  return m;
}

TEST(StripMention, RemovesOnlyALeadingMention) {
  EXPECT_EQ(strip_leading_mention("@Clawdbot hi there"), "hi there");
  EXPECT_EQ(strip_leading_mention("  @Clawdbot\xE2\x80\x85你好"), "你好");
  EXPECT_EQ(strip_leading_mention("hi @alice"), "hi @alice");
  EXPECT_EQ(strip_leading_mention("@bot"), "");
  EXPECT_EQ(strip_leading_mention("@bot @alice see"), "@alice see");
  EXPECT_EQ(strip_leading_mention(""), "");
}

TEST(DmPolicy, OpenAllowsEveryone) {
  FakeHost host;
  AccessControl access(host);
  EXPECT_EQ(access.evaluate(account(config::DmPolicy::Open), dm_from("anyone")).verdict, Verdict::Allow);
}

TEST(DmPolicy, DisabledAnswersRejectText) {
  FakeHost host;
  AccessControl access(host);
  auto d = access.evaluate(account(config::DmPolicy::Disabled), dm_from("u"));
  EXPECT_EQ(d.verdict, Verdict::Answer);
  EXPECT_EQ(d.text, account().reject_text);
}

TEST(DmPolicy, AllowlistUsesConfigAndStore) {
  FakeHost host;
  AccessControl access(host);
  auto a = account(config::DmPolicy::Allowlist);
  a.dm_allow_from = {"alice"};
  EXPECT_EQ(access.evaluate(a, dm_from("alice")).verdict, Verdict::Allow);
  auto bob = access.evaluate(a, dm_from("bob"));
  EXPECT_EQ(bob.verdict, Verdict::Answer);
  EXPECT_NE(bob.reason.find("not in dm.allowFrom"), std::string::npos);
  host.store_put(allow_from_namespace("default"), "list", R"(["bob"])");
  EXPECT_EQ(access.evaluate(a, dm_from("bob")).verdict, Verdict::Allow);
}

TEST(Pairing, UnknownSenderGetsStableEightCharCode) {
  FakeHost host;
  AccessControl access(host);
  auto first = access.evaluate(account(), dm_from("carol"));
  ASSERT_EQ(first.verdict, Verdict::Answer);
  auto pending = access.pending("default");
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 1u);
  const std::string code = (*pending)[0].code;
  EXPECT_EQ(code.size(), kPairingCodeLength);
  EXPECT_EQ(code.find_first_of("01OIL"), std::string::npos);
  EXPECT_NE(first.text.find("Pairing code: " + code), std::string::npos);
  EXPECT_NE(first.text.find("clawdbot pairing approve wecom " + code), std::string::npos);
  EXPECT_NE(first.text.find("carol"), std::string::npos);
  auto again = access.evaluate(account(), dm_from("carol"));
  EXPECT_NE(again.text.find(code), std::string::npos);
  EXPECT_EQ(access.pending("default")->size(), 1u);
}

TEST(Pairing, AtMostThreePendingAndExpiryAfterAnHour) {
  FakeHost host;
  AccessControl access(host);
  for (const char* u : {"u1", "u2", "u3"}) access.evaluate(account(), dm_from(u));
  EXPECT_EQ(access.pending("default")->size(), 3u);
  auto fourth = access.evaluate(account(), dm_from("u4"));
  EXPECT_EQ(fourth.verdict, Verdict::Answer);
  EXPECT_NE(fourth.text.find("too many approval requests"), std::string::npos);
  EXPECT_EQ(access.pending("default")->size(), 3u);
  host.clock_ms += kPairingTtlMs;
  EXPECT_TRUE(access.pending("default")->empty());
  access.evaluate(account(), dm_from("u4"));
  EXPECT_EQ(access.pending("default")->size(), 1u);
}

TEST(Pairing, ApproveAddsToAllowFromAndRemovesRequest) {
  FakeHost host;
  AccessControl access(host);
  access.evaluate(account(), dm_from("dave"));
  const std::string code = access.pending("default")->at(0).code;
  EXPECT_FALSE(access.approve("default", "WRONG123"));
  std::string lower = code;
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto user = access.approve("default", lower);  // codes are case-insensitive
  ASSERT_TRUE(user);
  EXPECT_EQ(*user, "dave");
  EXPECT_TRUE(access.pending("default")->empty());
  EXPECT_EQ(*access.stored_allow_from("default"), std::vector<std::string>{"dave"});
  EXPECT_EQ(access.evaluate(account(), dm_from("dave")).verdict, Verdict::Allow);
  EXPECT_FALSE(access.approve("default", code));  // used once
}

// A store that cannot be read is not an empty store: nobody is approved from it, and nothing is
// written back over what it may hold (a failed read followed by a write used to replace lists).
TEST(Pairing, UnreadableStoreFailsClosedAndIsNeverOverwritten) {
  FakeHost host;
  AccessControl access(host);
  host.store_put(allow_from_namespace("default"), "list", R"(["frank"])");
  access.evaluate(account(), dm_from("gina"));
  const std::string code = access.pending("default")->at(0).code;
  const auto before = host.store;
  host.fail_store_reads = true;
  EXPECT_EQ(access.evaluate(account(), dm_from("frank")).verdict, Verdict::Answer) << "fail closed";
  auto stranger = access.evaluate(account(), dm_from("henry"));
  EXPECT_EQ(stranger.verdict, Verdict::Answer);
  EXPECT_NE(stranger.text.find("cannot check approvals right now"), std::string::npos);
  auto approved = access.approve("default", code);
  ASSERT_FALSE(approved.ok());
  EXPECT_EQ(approved.error().kind, ErrorKind::Internal);
  EXPECT_FALSE(access.pending("default").ok());
  EXPECT_EQ(host.store, before) << "nothing was written while reads failed";
  EXPECT_GE(host.count_logs("treated as not approved", core::LogLevel::Error), 1u);
  host.fail_store_reads = false;
  EXPECT_EQ(access.evaluate(account(), dm_from("frank")).verdict, Verdict::Allow);
  EXPECT_EQ(*access.approve("default", code), "gina");
}

TEST(Pairing, ExpiredCodeCannotBeApproved) {
  FakeHost host;
  AccessControl access(host);
  access.evaluate(account(), dm_from("erin"));
  const std::string code = access.pending("default")->at(0).code;
  host.clock_ms += kPairingTtlMs;
  EXPECT_FALSE(access.approve("default", code));
}

TEST(GroupPolicy, OpenDisabledAllowlistAndPerGroupSettings) {
  FakeHost host;
  AccessControl access(host);
  auto a = account();
  EXPECT_EQ(access.evaluate(a, group_msg("g1", "u")).verdict, Verdict::Allow);  // DM policy does not apply
  a.group_policy = config::GroupPolicy::Disabled;
  EXPECT_EQ(access.evaluate(a, group_msg("g1", "u")).verdict, Verdict::Ignore);
  a.group_policy = config::GroupPolicy::Allowlist;
  EXPECT_EQ(access.evaluate(a, group_msg("g1", "u")).verdict, Verdict::Ignore);
  a.group_allow_from = {"g1"};
  EXPECT_EQ(access.evaluate(a, group_msg("g1", "u")).verdict, Verdict::Allow);
  a.group_allow_from = {"vip"};
  EXPECT_EQ(access.evaluate(a, group_msg("g9", "vip")).verdict, Verdict::Allow);
  a.groups["g2"] = config::GroupSettings{};
  EXPECT_EQ(access.evaluate(a, group_msg("g2", "u")).verdict, Verdict::Allow);
  a.groups["g2"].enabled = false;
  EXPECT_EQ(access.evaluate(a, group_msg("g2", "u")).verdict, Verdict::Ignore);
  a.group_policy = config::GroupPolicy::Open;
  a.groups["*"].require_mention = true;
  EXPECT_EQ(access.evaluate(a, group_msg("g3", "u", "no mention here")).verdict, Verdict::Ignore);
  EXPECT_EQ(access.evaluate(a, group_msg("g3", "u", "@bot hi")).verdict, Verdict::Allow);
}

}  // namespace
}  // namespace cwc::policy
