// Loads the built libclawdbot_wecom.so with dlopen, exactly as a host does, and drives it only
// through the public C ABI.
#include <dlfcn.h>
#include <unistd.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "clawdbot_wecom/clawdbot_wecom.h"
#include "crypto/crypto.h"
#include "envelope/envelope.h"
#include "support/wecom_requests.h"

namespace {

using InitFn = cwc_status (*)(uint32_t, cwc_plugin_api*, cwc_error*);
using VersionFn = uint32_t (*)();

cwc_str s(std::string_view v) { return cwc_str{v.data(), v.size()}; }

struct TestHost {
  std::mutex mutex;
  std::vector<std::string> logs;
  std::vector<std::string> stream_ids;
  std::vector<std::string> texts;
  std::atomic<int> dispatches{0};
  std::vector<std::string> fetch_urls;  // ABI 1.1 callback_fetch
  std::vector<uint64_t> fetch_ids;
  std::vector<std::string> fetch_bodies;
  std::vector<std::string> events;      // ABI 1.1 callback_event: "<type> <json>"
  std::string media_json;

  static cwc_status fetch(void* ctx, const cwc_fetch_request* r) {
    auto* self = static_cast<TestHost*>(ctx);
    std::lock_guard lock(self->mutex);
    self->fetch_urls.emplace_back(r->url.ptr, r->url.len);
    self->fetch_ids.push_back(r->request_id);
    self->fetch_bodies.emplace_back(r->body.ptr ? r->body.ptr : "", r->body.len);
    return CWC_OK;
  }
  static void event(void* ctx, const cwc_event* e) {
    auto* self = static_cast<TestHost*>(ctx);
    std::lock_guard lock(self->mutex);
    self->events.push_back(std::string(e->event_type.ptr, e->event_type.len) + " " +
                           std::string(e->event_json.ptr, e->event_json.len));
  }

  static void log(void* ctx, cwc_log_level, cwc_str account, cwc_str line) {
    auto* self = static_cast<TestHost*>(ctx);
    std::lock_guard lock(self->mutex);
    self->logs.push_back(std::string(account.ptr, account.len) + ": " + std::string(line.ptr, line.len));
  }
  static cwc_status dispatch(void* ctx, const cwc_inbound_message* m) {
    auto* self = static_cast<TestHost*>(ctx);
    std::lock_guard lock(self->mutex);
    self->stream_ids.emplace_back(m->stream_id.ptr, m->stream_id.len);
    self->texts.emplace_back(m->text.ptr, m->text.len);
    self->media_json.assign(m->media_json.ptr, m->media_json.len);
    ++self->dispatches;
    return CWC_OK;
  }

  cwc_host_api table() {
    cwc_host_api api{};
    api.struct_size = sizeof(api);
    api.abi_version = CWC_ABI_VERSION;
    api.host_ctx = this;
    api.callback_log = &TestHost::log;
    api.callback_dispatch = &TestHost::dispatch;
    return api;
  }
};

class AbiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    handle_ = dlopen(CWC_PLUGIN_PATH, RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(handle_, nullptr) << dlerror();
    init_ = reinterpret_cast<InitFn>(dlsym(handle_, "clawdbot_wecom_plugin_init"));
    ASSERT_NE(init_, nullptr);
    api_.struct_size = sizeof(api_);
    err_.struct_size = sizeof(err_);
    ASSERT_EQ(init_(CWC_ABI_VERSION, &api_, &err_), CWC_OK) << err_.message;
  }
  void TearDown() override {
    if (instance_) api_.on_instance_destroy(instance_);
    if (handle_) dlclose(handle_);
  }

  // `host_size`: what the host declares (an ABI 1.0 host's table ends before callback_fetch).
  void create(const std::string& config, bool with_1_1_callbacks = false, size_t host_size = sizeof(cwc_host_api)) {
    cwc_host_api table = host_.table();
    table.struct_size = host_size;
    if (with_1_1_callbacks) {
      table.callback_fetch = &TestHost::fetch;
      table.callback_event = &TestHost::event;
    }
    ASSERT_EQ(api_.on_instance_new(&table, s(config), &instance_, &err_), CWC_OK) << err_.message;
  }

  std::string config() const {
    return std::string(R"({"token":")") + cwc::testing::kToken + R"(","encodingAESKey":")" +
           cwc::testing::kAesKey + R"(","dm":{"policy":"open","allowFrom":["*"]}})";
  }

  // POSTs a signed callback and returns (status, decrypted reply).
  std::pair<int, std::string> post(const std::string& plaintext) {
    auto [status, body] = post_raw(plaintext);
    return {status, status == 200 && !body.empty() ? peer_.open_reply(body, "8427661") : body};
  }

  // POSTs a signed callback and returns (status, the response body as sent).
  std::pair<int, std::string> post_raw(const std::string& plaintext) {
    auto req = peer_.callback(plaintext);
    cwc_http_request r{};
    r.struct_size = sizeof(r);
    r.method = s("POST");
    r.path = s("/wecom");
    r.query = s(req.query);
    r.body = s(req.body);
    cwc_http_response res{};
    res.struct_size = sizeof(res);
    cwc_error err{};
    err.struct_size = sizeof(err);
    EXPECT_EQ(api_.on_http_request(instance_, &r, &res, &err), CWC_OK);
    std::string body(res.body.ptr ? res.body.ptr : "", res.body.len);
    api_.on_buffer_free(&res.body);
    EXPECT_EQ(res.body.ptr, nullptr);
    return {res.status, body};
  }

  void* handle_ = nullptr;
  InitFn init_ = nullptr;
  cwc_plugin_api api_{};
  cwc_error err_{};
  TestHost host_;
  cwc_instance* instance_ = nullptr;
  cwc::testing::WecomPeer peer_;
};

TEST_F(AbiTest, VersionProbeAndTable) {
  auto version = reinterpret_cast<VersionFn>(dlsym(handle_, "clawdbot_wecom_abi_version"));
  ASSERT_NE(version, nullptr);
  EXPECT_EQ(version(), CWC_ABI_VERSION);
  EXPECT_EQ(api_.abi_version, CWC_ABI_VERSION);
  EXPECT_GT(api_.plugin_version.len, 0u);
  EXPECT_NE(api_.on_http_request, nullptr);
  EXPECT_NE(api_.on_buffer_free, nullptr);
}

TEST_F(AbiTest, MajorMismatchIsAClearErrorNotACrash) {
  cwc_plugin_api api{};
  api.struct_size = sizeof(api);
  cwc_error err{};
  err.struct_size = sizeof(err);
  EXPECT_EQ(init_((2u << 16) | 0u, &api, &err), CWC_ERR_ABI_MISMATCH);
  EXPECT_NE(std::string(err.message).find("ABI 2.0"), std::string::npos) << err.message;
  EXPECT_EQ(api.on_http_request, nullptr);  // nothing written

  cwc_host_api table = host_.table();
  table.abi_version = 3u << 16;
  cwc_instance* inst = nullptr;
  EXPECT_EQ(api_.on_instance_new(&table, s(config()), &inst, &err), CWC_ERR_ABI_MISMATCH);
  EXPECT_EQ(inst, nullptr);
  EXPECT_NE(std::string(err.message).find("host callback table is ABI 3.0"), std::string::npos);
}

TEST_F(AbiTest, NewerMinorHostIsAccepted) {
  cwc_host_api table = host_.table();
  table.abi_version = CWC_ABI_VERSION + 5;  // same major, newer minor
  ASSERT_EQ(api_.on_instance_new(&table, s(config()), &instance_, &err_), CWC_OK) << err_.message;
}

TEST_F(AbiTest, SmallerTablesAreRejectedAndNeverOverwritten) {
  struct Guarded {
    cwc_plugin_api api;
    char canary[64];
  } guarded{};
  std::memset(guarded.canary, 0x5a, sizeof guarded.canary);
  guarded.api.struct_size = offsetof(cwc_plugin_api, on_routes);  // far too small
  cwc_error err{};
  err.struct_size = sizeof(err);
  EXPECT_EQ(init_(CWC_ABI_VERSION, &guarded.api, &err), CWC_ERR_INVALID_ARGUMENT);
  for (char c : guarded.canary) EXPECT_EQ(c, 0x5a);
  EXPECT_EQ(init_(CWC_ABI_VERSION, nullptr, &err), CWC_ERR_INVALID_ARGUMENT);

  cwc_host_api table = host_.table();
  table.struct_size = offsetof(cwc_host_api, callback_log);
  cwc_instance* inst = nullptr;
  EXPECT_EQ(api_.on_instance_new(&table, s(config()), &inst, &err), CWC_ERR_INVALID_ARGUMENT);
  table = host_.table();
  table.callback_dispatch = nullptr;
  EXPECT_EQ(api_.on_instance_new(&table, s(config()), &inst, &err), CWC_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(err.message).find("callback_dispatch"), std::string::npos);
}

TEST_F(AbiTest, ConfigErrorsCarryThePreciseMessage) {
  cwc_host_api table = host_.table();
  cwc_instance* inst = nullptr;
  const std::string bad = R"({"token":"T","encodingAESKey":"tooShortKey"})";
  EXPECT_EQ(api_.on_instance_new(&table, s(bad), &inst, &err_), CWC_ERR_CONFIG);
  EXPECT_STREQ(err_.message, "channels.wecom.encodingAESKey must be 43 characters (got 11)");
  EXPECT_EQ(err_.wecom_code, -40004);
  EXPECT_EQ(inst, nullptr);
}

TEST_F(AbiTest, FullStreamFlowThroughTheAbi) {
  create(config());
  auto [status, reply] = post(R"({"msgid":"m1","from":{"userid":"u1"},"msgtype":"text","text":{"content":"hi"}})");
  ASSERT_EQ(status, 200);
  ASSERT_EQ(host_.dispatches.load(), 1);
  const std::string id = host_.stream_ids[0];
  EXPECT_NE(reply.find("\"content\":\"1\""), std::string::npos) << reply;
  EXPECT_EQ(api_.on_stream_push(instance_, s(id), s("echo: "), CWC_PUSH_APPEND, &err_), CWC_OK);
  EXPECT_EQ(api_.on_stream_push(instance_, s(id), s("hi"), CWC_PUSH_APPEND, &err_), CWC_OK);
  EXPECT_EQ(api_.on_stream_finish(instance_, s(id), CWC_FINISH_DONE, s(""), &err_), CWC_OK);
  EXPECT_EQ(api_.on_stream_push(instance_, s(id), s("late"), CWC_PUSH_APPEND, &err_), CWC_ERR_STREAM_CLOSED);
  EXPECT_EQ(api_.on_stream_push(instance_, s("nope"), s("x"), CWC_PUSH_APPEND, &err_), CWC_ERR_NOT_FOUND);
  // A C host can pass any int where the enum is declared; call the way C would (an int in the
  // enum's slot), since building an out-of-range enum in C++ is itself undefined.
  using PushWithInt = cwc_status (*)(cwc_instance*, cwc_str, cwc_str, int, cwc_error*);
  auto push_with_int = reinterpret_cast<PushWithInt>(reinterpret_cast<void*>(api_.on_stream_push));
  EXPECT_EQ(push_with_int(instance_, s(id), s("x"), 9, &err_), CWC_ERR_INVALID_ARGUMENT);
  auto [st2, refresh] =
      post(R"({"msgid":"r1","from":{"userid":"u1"},"msgtype":"stream","stream":{"id":")" + id + "\"}}");
  EXPECT_EQ(st2, 200);
  EXPECT_NE(refresh.find("\"finish\":true,\"content\":\"echo: hi\""), std::string::npos) << refresh;
}

// Without callback_random the library draws RAND_bytes in 4 KiB batches. Every reply must still
// carry its own random prefix, also across refills (600 replies of 16 bytes span three batches).
TEST_F(AbiTest, RepliesWithoutAHostRandomEachGetFreshRandomBytes) {
  create(config());
  ASSERT_EQ(post(R"({"msgid":"m1","from":{"userid":"u1"},"msgtype":"text","text":{"content":"hi"}})").first, 200);
  ASSERT_EQ(host_.dispatches.load(), 1);
  const std::string refresh =
      R"({"msgid":"r1","from":{"userid":"u1"},"msgtype":"stream","stream":{"id":")" + host_.stream_ids[0] + "\"}}";
  const auto key = *cwc::crypto::AesKey::from_encoding_aes_key(cwc::testing::kAesKey);
  std::set<std::string> prefixes;
  for (int i = 0; i < 600; ++i) {
    auto [status, body] = post_raw(refresh);
    ASSERT_EQ(status, 200) << body;
    auto envelope = cwc::envelope::parse_reply_envelope(body);
    ASSERT_TRUE(envelope.ok());
    auto plain = cwc::crypto::aes_cbc_decrypt_raw(key, *cwc::crypto::base64_decode(envelope->encrypt));
    ASSERT_TRUE(plain.ok());
    prefixes.insert(plain->substr(0, cwc::crypto::kRandomPrefixBytes));
  }
  EXPECT_EQ(prefixes.size(), 600u);
  EXPECT_EQ(prefixes.count(std::string(cwc::crypto::kRandomPrefixBytes, '\0')), 0u);
}

TEST_F(AbiTest, RoutesStatusProbeSendTextTick) {
  create(config());
  cwc_buffer buf{};
  ASSERT_EQ(api_.on_routes(instance_, &buf, &err_), CWC_OK);
  EXPECT_EQ(std::string(buf.ptr, buf.len), R"([{"accountId":"default","path":"/wecom","methods":["GET","POST"]}])");
  api_.on_buffer_free(&buf);
  ASSERT_EQ(api_.on_status(instance_, &buf, &err_), CWC_OK);
  EXPECT_NE(std::string(buf.ptr, buf.len).find("\"webhookPath\":\"/wecom\""), std::string::npos);
  api_.on_buffer_free(&buf);
  ASSERT_EQ(api_.on_probe(instance_, s(""), &buf, &err_), CWC_OK);
  EXPECT_EQ(std::string(buf.ptr, buf.len).rfind("{\"ok\":true", 0), 0u);
  api_.on_buffer_free(&buf);
  EXPECT_EQ(api_.on_probe(instance_, s("missing"), &buf, &err_), CWC_ERR_NOT_FOUND);
  EXPECT_EQ(api_.on_send_text(instance_, s("default"), s("wecom:u1"), s("hi"), &err_), CWC_ERR_UNSUPPORTED);
  EXPECT_NE(std::string(err_.message).find("passive-reply only"), std::string::npos);
  api_.on_tick(instance_);
  api_.on_buffer_free(nullptr);
  cwc_buffer zero{};
  api_.on_buffer_free(&zero);
}

TEST_F(AbiTest, PairingListAndApproveThroughTheAbi) {
  create(std::string(R"({"token":")") + cwc::testing::kToken + R"(","encodingAESKey":")" + cwc::testing::kAesKey + R"("})");
  auto [status, reply] = post(R"({"msgid":"p1","from":{"userid":"stranger"},"msgtype":"text","text":{"content":"hi"}})");
  ASSERT_EQ(status, 200);
  EXPECT_NE(reply.find("Pairing code: "), std::string::npos) << reply;
  EXPECT_EQ(host_.dispatches.load(), 0);
  cwc_buffer buf{};
  ASSERT_EQ(api_.on_pairing_list(instance_, s(""), &buf, &err_), CWC_OK);
  const std::string list(buf.ptr, buf.len);
  api_.on_buffer_free(&buf);
  const auto at = list.find("\"code\":\"");
  ASSERT_NE(at, std::string::npos) << list;
  const std::string code = list.substr(at + 8, 8);
  EXPECT_EQ(api_.on_pairing_approve(instance_, s(""), s("XXXXXXXX"), &buf, &err_), CWC_ERR_NOT_FOUND);
  EXPECT_NE(std::string(err_.message).find("codes expire after 1 hour"), std::string::npos);
  ASSERT_EQ(api_.on_pairing_approve(instance_, s(""), s(code), &buf, &err_), CWC_OK) << err_.message;
  EXPECT_EQ(std::string(buf.ptr, buf.len), R"({"accountId":"default","userId":"stranger"})");
  api_.on_buffer_free(&buf);
  post(R"({"msgid":"p2","from":{"userid":"stranger"},"msgtype":"text","text":{"content":"hi"}})");
  EXPECT_EQ(host_.dispatches.load(), 1);
}

TEST_F(AbiTest, ConcurrentRequestsAndPushesFromManyThreads) {
  create(config());
  constexpr int kThreads = 4;
  constexpr int kPerThread = 50;
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string msgid = "t" + std::to_string(t) + "-" + std::to_string(i);
        // One user per thread: beyond 3 in flight a user's messages wait in their lane until the
        // pusher finishes earlier answers, so lanes are exercised across threads too.
        auto [status, reply] = post(R"({"msgid":")" + msgid + R"(","from":{"userid":"u)" + std::to_string(t) +
                                    R"("},"msgtype":"text","text":{"content":"x"}})");
        if (status == 200 && !reply.empty()) ++ok;
      }
    });
  }
  std::atomic<bool> senders_done{false};
  std::thread pusher([&] {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      std::vector<std::string> ids;
      {
        std::lock_guard lock(host_.mutex);
        ids = host_.stream_ids;
      }
      cwc_error err{};
      err.struct_size = sizeof(err);
      for (const auto& id : ids) {
        api_.on_stream_push(instance_, s(id), s("."), CWC_PUSH_APPEND, &err);
        api_.on_stream_finish(instance_, s(id), CWC_FINISH_DONE, s(""), &err);
      }
      api_.on_tick(instance_);
      if (senders_done && host_.dispatches.load() == kThreads * kPerThread) break;
    }
  });
  for (auto& t : threads) t.join();
  senders_done = true;
  pusher.join();
  EXPECT_EQ(ok.load(), kThreads * kPerThread);
  EXPECT_EQ(host_.dispatches.load(), kThreads * kPerThread);
}

TEST_F(AbiTest, Abi11HostDownloadsMediaThroughCallbackFetch) {
  const std::string media_dir = "/tmp/cwc-abi-test-media-" + std::to_string(::getpid());
  create(config().substr(0, config().size() - 1) + R"(,"mediaDir":")" + media_dir + "\"}", /*with_1_1_callbacks=*/true);
  post(R"({"msgid":"i1","from":{"userid":"u"},"response_url":"http://127.0.0.1:9/r","msgtype":"image","image":{"url":"http://127.0.0.1:9/img"}})");
  ASSERT_EQ(host_.fetch_urls.size(), 1u);
  EXPECT_EQ(host_.fetch_urls[0], "http://127.0.0.1:9/img");
  EXPECT_EQ(host_.dispatches.load(), 0);
  const std::string png = std::string("\x89PNG\r\n\x1A\n", 8) + "pixels";
  auto key = cwc::crypto::AesKey::from_encoding_aes_key(cwc::testing::kAesKey);
  const std::string cipher = cwc::crypto::aes_cbc_encrypt_raw(*key, cwc::crypto::pad32(png));
  ASSERT_EQ(api_.on_fetch_done(instance_, host_.fetch_ids[0], CWC_FETCH_OK, 200, s(cipher), s(""), &err_), CWC_OK)
      << err_.message;
  EXPECT_EQ(host_.dispatches.load(), 1);
  EXPECT_NE(host_.media_json.find(R"("mime":"image/png")"), std::string::npos) << host_.media_json;
  EXPECT_EQ(api_.on_fetch_done(instance_, 999999, CWC_FETCH_OK, 200, s(""), s(""), &err_), CWC_ERR_NOT_FOUND);

  // A reply image and a long answer: msg_item on the finish, the rest through response_url.
  const std::string stream_id = host_.stream_ids[0];
  ASSERT_EQ(api_.on_stream_attach_image(instance_, s(stream_id), s(png), &err_), CWC_OK) << err_.message;
  EXPECT_EQ(api_.on_stream_attach_image(instance_, s(stream_id), s("GIF89a"), &err_), CWC_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(err_.message).find("JPEG or PNG"), std::string::npos);
  const std::string long_answer(25000, 'a');
  ASSERT_EQ(api_.on_stream_finish(instance_, s(stream_id), CWC_FINISH_DONE, s(long_answer), &err_), CWC_OK);
  ASSERT_EQ(host_.fetch_urls.size(), 2u);
  EXPECT_EQ(host_.fetch_urls[1], "http://127.0.0.1:9/r");
  EXPECT_NE(host_.fetch_bodies[1].find(R"("msgtype":"markdown")"), std::string::npos);

  post(R"({"msgid":"e1","from":{"userid":"u"},"msgtype":"event","event":{"eventtype":"feedback_event","feedback_event":{"id":"F","type":2}}})");
  ASSERT_EQ(host_.events.size(), 1u);
  EXPECT_EQ(host_.events[0], R"(feedback_event {"eventtype":"feedback_event","feedback_event":{"id":"F","type":2}})");
  std::filesystem::remove_all(media_dir);
}

TEST_F(AbiTest, Abi10HostTableNeverHasItsMissingCallbacksRead) {
  // The 1.1 pointers are set but lie beyond the declared size: the plugin must not use them.
  create(config(), /*with_1_1_callbacks=*/true, offsetof(cwc_host_api, callback_fetch));
  post(R"({"msgid":"i1","from":{"userid":"u"},"msgtype":"image","image":{"url":"http://127.0.0.1:9/img"}})");
  EXPECT_TRUE(host_.fetch_urls.empty());
  EXPECT_EQ(host_.dispatches.load(), 1);
  EXPECT_EQ(host_.media_json, R"([{"kind":"image","url":"http://127.0.0.1:9/img"}])");
  post(R"({"msgid":"e1","from":{"userid":"u"},"msgtype":"event","event":{"eventtype":"feedback_event"}})");
  EXPECT_TRUE(host_.events.empty());
}

}  // namespace
