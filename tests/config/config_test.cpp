#include "config/config.h"

#include <gtest/gtest.h>

namespace cwc::config {
namespace {

constexpr const char* kKey = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt";

std::string single(const std::string& extra = "") {
  return std::string(R"({"enabled":true,"token":"TOKEN","encodingAESKey":")") + kKey + "\"" + extra + "}";
}

std::string error_of(const std::string& json) {
  auto r = parse_channel_config(json);
  EXPECT_FALSE(r.ok()) << json;
  return r.ok() ? std::string() : r.error().detail;
}

TEST(Config, SingleAccountDefaults) {
  auto c = parse_channel_config(single());
  ASSERT_TRUE(c.ok()) << c.error().detail;
  ASSERT_EQ(c->accounts.size(), 1u);
  const auto& a = c->accounts[0];
  EXPECT_EQ(a.id, "default");
  EXPECT_EQ(a.webhook_path, "/wecom");
  EXPECT_EQ(a.receive_id, "");
  EXPECT_EQ(a.dm_policy, DmPolicy::Pairing);
  EXPECT_EQ(a.group_policy, GroupPolicy::Open);
  EXPECT_EQ(a.stream_placeholder, "1");
  EXPECT_EQ(a.max_body_bytes, 1024u * 1024u);
  EXPECT_EQ(a.stream_ttl_seconds, 600);
  EXPECT_FALSE(a.welcome_text.has_value());
  EXPECT_EQ(c->default_account, "default");
  EXPECT_EQ(c->max_open_streams, 10000u);
}

TEST(Config, DocsSingleAccountExampleIsAccepted) {
  auto c = parse_channel_config(std::string(R"({"enabled":true,"webhookPath":"/wecom","token":"YOUR_TOKEN",
    "encodingAESKey":")") + kKey + R"(","receiveId":"","welcomeText":"你好，我是 Clawdbot。",
    "dm":{"policy":"pairing","allowFrom":["userid1","userid2"]}})");
  ASSERT_TRUE(c.ok()) << c.error().detail;
  EXPECT_EQ(*c->accounts[0].welcome_text, "你好，我是 Clawdbot。");
  EXPECT_EQ(c->accounts[0].dm_allow_from.size(), 2u);
}

TEST(Config, DocsMultiAccountExampleIsAccepted) {
  auto c = parse_channel_config(std::string(R"({"enabled":true,"defaultAccount":"default","accounts":{
    "default":{"webhookPath":"/wecom","token":"TOKEN_A","encodingAESKey":")") + kKey + R"(","receiveId":""},
    "team2":{"webhookPath":"/wecom-team2","token":"TOKEN_B","encodingAESKey":")" + kKey + R"(","receiveId":""}}})");
  ASSERT_TRUE(c.ok()) << c.error().detail;
  ASSERT_EQ(c->accounts.size(), 2u);
  EXPECT_EQ(c->find_account("team2")->webhook_path, "/wecom-team2");
  EXPECT_EQ(c->find_account("team2")->token, "TOKEN_B");
  EXPECT_EQ(c->default_account, "default");
}

TEST(Config, AccountsInheritTopLevelSettings) {
  auto c = parse_channel_config(std::string(R"({"welcomeText":"hi","dm":{"policy":"allowlist","allowFrom":["a"]},
    "accounts":{"x":{"webhookPath":"/x","token":"T","encodingAESKey":")") + kKey + R"(","dm":{"allowFrom":["b"]}}}})");
  ASSERT_TRUE(c.ok()) << c.error().detail;
  const auto& a = c->accounts[0];
  EXPECT_EQ(*a.welcome_text, "hi");
  EXPECT_EQ(a.dm_policy, DmPolicy::Allowlist);
  EXPECT_EQ(a.dm_allow_from, std::vector<std::string>{"b"});
  EXPECT_EQ(c->default_account, "x");
}

TEST(Config, PreciseErrors) {
  EXPECT_EQ(error_of(R"({"token":"T","encodingAESKey":"abc"})"),
            "channels.wecom.encodingAESKey must be 43 characters (got 3)");
  EXPECT_EQ(error_of(std::string(R"({"token":"T","encodingAESKey":")") + std::string(42, 'a') + "\"}"),
            "channels.wecom.encodingAESKey must be 43 characters (got 42)");
  EXPECT_NE(error_of(R"({"encodingAESKey":"x"})").find("channels.wecom.token is required"), std::string::npos);
  EXPECT_NE(error_of(R"({"token":"T"})").find("channels.wecom.encodingAESKey is required"), std::string::npos);
  EXPECT_EQ(error_of(single(R"(,"encodingAesKey":"x")")),
            "channels.wecom.encodingAesKey is not a known key (did you mean \"encodingAESKey\"?)");
  EXPECT_EQ(error_of(single(R"(,"webhookPath":"wecom")")),
            "channels.wecom.webhookPath must start with \"/\" (got \"wecom\")");
  EXPECT_EQ(error_of(single(R"(,"dm":{"policy":"everyone"})")),
            "channels.wecom.dm.policy must be one of pairing, allowlist, open, disabled (got \"everyone\")");
  EXPECT_EQ(error_of(single(R"(,"dm":{"policy":"open"})")),
            "channels.wecom.dm.allowFrom must contain \"*\" when dm.policy is \"open\"");
  EXPECT_EQ(error_of(single(R"(,"maxBodyBytes":10)")),
            "channels.wecom.maxBodyBytes must be between 1024 and 16777216 (got 10)");
  EXPECT_EQ(error_of("{"), "channels.wecom is not valid JSON");
  EXPECT_EQ(error_of("[]"), "channels.wecom must be an object");
  EXPECT_EQ(error_of(single(R"(,"groupPolicy":"some")")),
            "channels.wecom.groupPolicy must be one of open, allowlist, disabled (got \"some\")");
  EXPECT_EQ(error_of(single(R"(,"token":"has space")")),
            "channels.wecom.token contains whitespace: copy the Token exactly as WeCom shows it");
}

TEST(Config, DuplicateWebhookPathsAreRejected) {
  const std::string account = std::string(R"({"token":"T","encodingAESKey":")") + kKey + "\"}";
  EXPECT_EQ(error_of(R"({"accounts":{"a":)" + account + R"(,"b":)" + account + "}}"),
            "channels.wecom.accounts.b.webhookPath duplicates the webhookPath \"/wecom\" of account \"a\": "
            "give each account its own path");
}

TEST(Config, DefaultAccountMustExist) {
  const std::string account = std::string(R"({"token":"T","encodingAESKey":")") + kKey + "\"}";
  EXPECT_EQ(error_of(R"({"defaultAccount":"zz","accounts":{"a":)" + account + "}}"),
            "channels.wecom.defaultAccount names \"zz\", which is not under channels.wecom.accounts");
  EXPECT_NE(error_of(R"({"accounts":{}})").find("channels.wecom.accounts is empty"), std::string::npos);
  EXPECT_NE(error_of(R"({"accounts":{"bad id":)" + account + "}}").find("not a valid account id"), std::string::npos);
  EXPECT_NE(error_of(R"({"accounts":{"a":{"accounts":{}}}})").find("belongs directly under channels.wecom"),
            std::string::npos);
}

TEST(Config, TrailingSlashOnPathIsNormalised) {
  auto c = parse_channel_config(single(R"(,"webhookPath":"/hook/")"));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->accounts[0].webhook_path, "/hook");
}

TEST(Config, GroupsAndNumericAllowFrom) {
  auto c = parse_channel_config(single(R"(,"groupPolicy":"allowlist","groupAllowFrom":["g1"],
    "groups":{"*":{"requireMention":true},"g1":{"requireMention":false}},"dm":{"policy":"allowlist","allowFrom":[123]})"));
  ASSERT_TRUE(c.ok()) << c.error().detail;
  EXPECT_EQ(c->accounts[0].groups.at("*").require_mention, true);
  EXPECT_EQ(c->accounts[0].dm_allow_from[0], "123");
  EXPECT_NE(error_of(single(R"(,"groups":{"g":{"mention":true}})")).find("groups.g.mention is not a known key"),
            std::string::npos);
}

// Regression: a value nested 100000 levels deep overflowed the stack (merged_account copies
// values recursively); the depth is now bounded before parsing, with a message naming the root.
TEST(Config, DeepNestingIsRejectedWithoutOverflowingTheStack) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  auto r = parse_channel_config(std::string(R"({"accounts":{"a":{"token":"T","encodingAESKey":")") + kKey +
                                R"(","name":)" + deep + "}}}");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().detail, "channels.wecom nests deeper than 32 levels");
}

}  // namespace
}  // namespace cwc::config
