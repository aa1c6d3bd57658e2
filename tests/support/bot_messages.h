// Decrypted bot messages as WeCom builds them, and a fixture with one core::Instance behind a
// FakeHost and a WeCom peer, for the core's tests.
#pragma once

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <memory>
#include <string>

#include "core/instance.h"
#include "support/fake_host.h"
#include "support/wecom_requests.h"

namespace cwc::testing {

using nlohmann::json;

// Most tests exercise the message path, so the DM policy is open unless a test says otherwise.
inline constexpr const char* kOpenDm = R"(,"dm":{"policy":"open","allowFrom":["*"]})";

inline std::string config_json(const std::string& extra = kOpenDm) {
  return std::string(R"({"token":")") + cwc::testing::kToken + R"(","encodingAESKey":")" + cwc::testing::kAesKey +
         R"(","receiveId":"")" + extra + "}";
}

inline std::string text_message(const std::string& msgid, const std::string& text, const std::string& user = "zhangsan",
                         const std::string& chatid = "") {
  json m = {{"msgid", msgid}, {"aibotid", "BOT"}, {"chattype", chatid.empty() ? "single" : "group"},
            {"from", {{"userid", user}}}, {"response_url", "https://example.invalid/r"},
            {"msgtype", "text"}, {"text", {{"content", text}}}};
  if (!chatid.empty()) m["chatid"] = chatid;
  return m.dump();
}

inline std::string refresh_message(const std::string& stream_id) {
  return json({{"msgid", "r-" + stream_id}, {"aibotid", "BOT"}, {"chattype", "single"},
               {"from", {{"userid", "zhangsan"}}}, {"msgtype", "stream"}, {"stream", {{"id", stream_id}}}})
      .dump();
}

class InstanceFixture : public ::testing::Test {
 protected:
  void SetUp() override { make(config_json()); }

  void make(const std::string& config) {
    auto created = core::Instance::create(config, host);
    ASSERT_TRUE(created.ok()) << created.error().detail;
    instance = std::move(*created);
  }

  core::HttpResponse post(const std::string& plaintext, envelope::Format format = envelope::Format::Json,
                    const std::string& path = "/wecom") {
    auto req = peer.callback(plaintext, format);
    return instance->handle({"POST", path, req.query, "application/json", req.body, "127.0.0.1"});
  }

  // Posts and returns the decrypted reply JSON (or null for an empty reply).
  json exchange(const std::string& plaintext, envelope::Format format = envelope::Format::Json) {
    auto res = post(plaintext, format);
    EXPECT_EQ(res.status, 200) << res.body;
    if (res.body.empty()) return nullptr;
    std::string error;
    std::string plain = peer.open_reply(res.body, "8427661", &error);
    EXPECT_TRUE(error.empty()) << error;
    return json::parse(plain);
  }

  FakeHost host;
  WecomPeer peer;
  std::unique_ptr<core::Instance> instance;
};

}  // namespace cwc::testing
