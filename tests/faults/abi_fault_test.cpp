// Instance teardown while replies are still being pushed, through the public C ABI (dlopen, like
// tests/abi). The contract (clawdbot_wecom.h): on_instance_destroy MUST NOT run concurrently with
// any other call on that instance; calls on other instances may continue. A host whose agent
// threads can outlive the instance therefore gates every call behind a guard that destroy takes
// exclusively (the gateway instead joins its agent workers before destroying). These tests run
// that pattern under load: agent threads appending and finishing, WeCom requests and refreshes,
// the instance destroyed in the middle of all of it. ASan/LSan (no use-after-free, no leak of the
// dropped open streams) and TSan (every push happens-before the destroy) do the checking; the
// tests check that everything returns, that stale stream ids are refused afterwards, and that a
// second instance in the same .so is untouched by the first one's teardown.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "clawdbot_wecom/clawdbot_wecom.h"
#include "support/wecom_requests.h"

namespace {

using namespace std::chrono_literals;
using InitFn = cwc_status (*)(uint32_t, cwc_plugin_api*, cwc_error*);

cwc_str s(std::string_view v) { return cwc_str{v.data(), v.size()}; }

cwc_error make_error() {
  cwc_error err{};
  err.struct_size = sizeof(err);
  return err;
}

// Host callbacks: dispatch records the stream ids the "agent" will answer.
struct Host {
  std::mutex mutex;
  std::vector<std::string> stream_ids;
  std::atomic<int> dispatches{0};

  static void log(void*, cwc_log_level, cwc_str, cwc_str) {}
  static cwc_status dispatch(void* ctx, const cwc_inbound_message* m) {
    auto* self = static_cast<Host*>(ctx);
    std::lock_guard lock(self->mutex);
    self->stream_ids.emplace_back(m->stream_id.ptr, m->stream_id.len);
    ++self->dispatches;
    return CWC_OK;
  }
  std::vector<std::string> ids() {
    std::lock_guard lock(mutex);
    return stream_ids;
  }
  cwc_host_api table() {
    cwc_host_api api{};
    api.struct_size = sizeof(api);
    api.abi_version = CWC_ABI_VERSION;
    api.host_ctx = this;
    api.callback_log = &Host::log;
    api.callback_dispatch = &Host::dispatch;
    return api;
  }
};

// One instance behind the host's guard: calls take it shared and are refused once the instance
// is gone; destroy() takes it exclusively, so it waits for calls in flight and no call starts
// after it.
class GuardedInstance {
 public:
  GuardedInstance(const cwc_plugin_api& api, Host& host, const std::string& config) : api_(api) {
    cwc_host_api table = host.table();
    cwc_error err = make_error();
    if (api_.on_instance_new(&table, s(config), &instance_, &err) != CWC_OK) {
      throw std::runtime_error(std::string("on_instance_new: ") + err.message);
    }
  }
  ~GuardedInstance() { destroy(); }
  GuardedInstance(const GuardedInstance&) = delete;
  GuardedInstance& operator=(const GuardedInstance&) = delete;

  void destroy() {
    std::unique_lock lock(mutex_);
    if (instance_) api_.on_instance_destroy(instance_);
    instance_ = nullptr;
  }
  bool alive() const {
    std::shared_lock lock(mutex_);
    return instance_ != nullptr;
  }

  // CWC_ERR_INTERNAL stands for "the instance is gone" (never entered the plugin).
  cwc_status push(const std::string& id, std::string_view text) {
    std::shared_lock lock(mutex_);
    if (!instance_) return CWC_ERR_INTERNAL;
    cwc_error err = make_error();
    return api_.on_stream_push(instance_, s(id), s(text), CWC_PUSH_APPEND, &err);
  }
  cwc_status finish(const std::string& id, bool failed, std::string_view text) {
    std::shared_lock lock(mutex_);
    if (!instance_) return CWC_ERR_INTERNAL;
    cwc_error err = make_error();
    return api_.on_stream_finish(instance_, s(id), failed ? CWC_FINISH_FAILED : CWC_FINISH_DONE, s(text), &err);
  }
  void tick() {
    std::shared_lock lock(mutex_);
    if (instance_) api_.on_tick(instance_);
  }
  // A signed POST; the HTTP status and the decrypted reply ("" if none), or status 0 once gone.
  std::pair<int, std::string> post(const cwc::testing::WecomPeer& peer, const std::string& plaintext) {
    const auto req = peer.callback(plaintext);
    std::shared_lock lock(mutex_);
    if (!instance_) return {0, ""};
    cwc_http_request r{};
    r.struct_size = sizeof(r);
    r.method = s("POST");
    r.path = s("/wecom");
    r.query = s(req.query);
    r.body = s(req.body);
    cwc_http_response res{};
    res.struct_size = sizeof(res);
    cwc_error err = make_error();
    if (api_.on_http_request(instance_, &r, &res, &err) != CWC_OK) return {-1, err.message};
    std::string body(res.body.ptr ? res.body.ptr : "", res.body.len);
    api_.on_buffer_free(&res.body);
    return {res.status, res.status == 200 && !body.empty() ? peer.open_reply(body, "8427661") : body};
  }

 private:
  const cwc_plugin_api& api_;
  mutable std::shared_mutex mutex_;
  cwc_instance* instance_ = nullptr;
};

std::string text_message(const std::string& msgid, const std::string& user) {
  return R"({"msgid":")" + msgid + R"(","from":{"userid":")" + user +
         R"("},"msgtype":"text","text":{"content":"hi"}})";
}
std::string refresh_message(const std::string& msgid, const std::string& user, const std::string& stream_id) {
  return R"({"msgid":")" + msgid + R"(","from":{"userid":")" + user + R"("},"msgtype":"stream","stream":{"id":")" +
         stream_id + "\"}}";
}

class AbiFault : public ::testing::Test {
 protected:
  void SetUp() override {
    handle_ = dlopen(CWC_PLUGIN_PATH, RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(handle_, nullptr) << dlerror();
    auto init = reinterpret_cast<InitFn>(dlsym(handle_, "clawdbot_wecom_plugin_init"));
    ASSERT_NE(init, nullptr);
    api_.struct_size = sizeof(api_);
    cwc_error err = make_error();
    ASSERT_EQ(init(CWC_ABI_VERSION, &api_, &err), CWC_OK) << err.message;
  }
  void TearDown() override {
    if (handle_) dlclose(handle_);
  }

  static std::string config() {
    return std::string(R"({"token":")") + cwc::testing::kToken + R"(","encodingAESKey":")" + cwc::testing::kAesKey +
           R"(","dm":{"policy":"open","allowFrom":["*"]}})";
  }

  // Joins `threads`, failing (instead of hanging the suite) if one is still running after `limit`.
  static void join_within(std::vector<std::thread>& threads, std::atomic<int>& exited, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (exited.load() < static_cast<int>(threads.size()) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(5ms);
    }
    ASSERT_EQ(exited.load(), static_cast<int>(threads.size())) << "a thread is hung after the instance was destroyed";
    for (auto& t : threads) t.join();
  }

  void* handle_ = nullptr;
  cwc_plugin_api api_{};
  cwc::testing::WecomPeer peer_;
};

// Agent threads append to and finish open streams, WeCom threads post messages and refreshes,
// and the instance is destroyed in the middle: every thread notices within a bounded time, the
// open streams (some half-pushed, never finished) are dropped without leaks, and calls that were
// in flight completed before the destroy.
TEST_F(AbiFault, DestroyWhileAgentThreadsArePushing) {
  Host host;
  GuardedInstance instance(api_, host, config());
  for (int i = 0; i < 40; ++i) {
    // One user per message: WeCom's per-user limit (3 in flight) would otherwise hold some back.
    ASSERT_EQ(instance.post(peer_, text_message("seed-" + std::to_string(i), "u" + std::to_string(i))).first, 200);
  }
  ASSERT_EQ(host.dispatches.load(), 40);

  std::atomic<int> exited{0};
  std::atomic<long> pushes_ok{0};
  std::atomic<long> refused_after_destroy{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {  // agents
    threads.emplace_back([&, t] {
      for (long round = 0;; ++round) {
        bool gone = false;
        const auto ids = host.ids();
        for (std::size_t i = t; i < ids.size(); i += 4) {
          const cwc_status st = instance.push(ids[i], "block ");
          if (st == CWC_ERR_INTERNAL) gone = true;
          if (st == CWC_OK) ++pushes_ok;
          // Finish some streams, fail others, leave the rest open for the destroy to drop.
          if (round == 20 && i % 3 == 0) instance.finish(ids[i], i % 2 == 0, i % 2 == 0 ? "⚠️ failed" : "");
        }
        if (gone) {
          ++refused_after_destroy;
          break;
        }
      }
      ++exited;
    });
  }
  for (int t = 0; t < 2; ++t) {  // WeCom: new messages and refreshes of the streams being pushed
    threads.emplace_back([&, t] {
      for (int i = 0;; ++i) {
        const auto ids = host.ids();
        const std::string user = "w" + std::to_string(t);
        const auto [status, reply] =
            i % 2 == 0 ? instance.post(peer_, text_message("w" + std::to_string(t) + "-" + std::to_string(i), user))
                       : instance.post(peer_, refresh_message("r" + std::to_string(i), user, ids[i % ids.size()]));
        if (status == 0) break;
        EXPECT_EQ(status, 200) << reply;
        instance.tick();
      }
      ++exited;
    });
  }
  std::this_thread::sleep_for(300ms);
  const auto destroying = std::chrono::steady_clock::now();
  instance.destroy();
  EXPECT_LT(std::chrono::steady_clock::now() - destroying, 2s);  // waited only for calls in flight
  join_within(threads, exited, 5s);
  EXPECT_GT(pushes_ok.load(), 0);
  EXPECT_EQ(refused_after_destroy.load(), 4);
  EXPECT_FALSE(instance.alive());
}

// A stream id from a destroyed instance means nothing to the next one: refused, never delivered
// into another user's stream.
TEST_F(AbiFault, StreamIdsDoNotOutliveTheirInstance) {
  Host first_host;
  std::vector<std::string> old_ids;
  {
    GuardedInstance first(api_, first_host, config());
    for (int i = 0; i < 5; ++i) {
      ASSERT_EQ(first.post(peer_, text_message("m" + std::to_string(i), "u" + std::to_string(i))).first, 200);
    }
    old_ids = first_host.ids();
    ASSERT_EQ(old_ids.size(), 5u);
    ASSERT_EQ(first.push(old_ids[0], "half an answer"), CWC_OK);
  }  // destroyed with five open streams
  Host second_host;
  GuardedInstance second(api_, second_host, config());
  ASSERT_EQ(second.post(peer_, text_message("m0", "u")).first, 200);  // same msgid: a new instance, a new stream
  ASSERT_EQ(second_host.dispatches.load(), 1);
  const std::string fresh = second_host.ids()[0];
  for (const auto& id : old_ids) {
    if (id == fresh) continue;  // ids are random; a collision would be a fresh stream, not a stale one
    EXPECT_EQ(second.push(id, "stale"), CWC_ERR_NOT_FOUND) << id;
    EXPECT_EQ(second.finish(id, true, "stale"), CWC_ERR_NOT_FOUND) << id;
  }
  ASSERT_EQ(second.push(fresh, "new answer"), CWC_OK);
  ASSERT_EQ(second.finish(fresh, false, ""), CWC_OK);
  const auto [status, reply] = second.post(peer_, refresh_message("r", "u", fresh));
  EXPECT_EQ(status, 200);
  EXPECT_NE(reply.find("\"finish\":true,\"content\":\"new answer\""), std::string::npos) << reply;
}

// Instances share the .so (and whatever process-wide state it keeps, e.g. its OpenSSL): tearing
// one down again and again while another is under load must not disturb the other.
TEST_F(AbiFault, DestroyingOneInstanceLeavesAnotherUntouched) {
  Host steady_host;
  GuardedInstance steady(api_, steady_host, config());
  std::atomic<bool> stop{false};
  std::atomic<int> exited{0};
  std::atomic<int> answered{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; !stop; ++i) {
        const std::string user = "s" + std::to_string(t);
        const std::string msgid = user + "-" + std::to_string(i);
        auto [status, reply] = steady.post(peer_, text_message(msgid, user));
        std::string id;
        for (const auto& candidate : steady_host.ids()) id = candidate;  // the newest stream will do
        steady.push(id, "x");
        auto [rs, refreshed] = steady.post(peer_, refresh_message("r" + msgid, user, id));
        // EXPECT, not ASSERT: this thread must reach ++exited whatever happens.
        EXPECT_EQ(status, 200) << reply;
        EXPECT_EQ(rs, 200) << refreshed;
        EXPECT_NE(refreshed.find("\"stream\""), std::string::npos) << refreshed;
        if (status != 200 || rs != 200) break;
        ++answered;
      }
      ++exited;
    });
  }
  for (int round = 0; round < 20; ++round) {
    Host host;
    GuardedInstance doomed(api_, host, config());
    for (int i = 0; i < 5; ++i) doomed.post(peer_, text_message("d" + std::to_string(i), "d"));
    for (const auto& id : host.ids()) doomed.push(id, "never finished");
  }  // each destroyed with open streams while `steady` serves
  stop = true;
  join_within(threads, exited, 5s);
  EXPECT_GT(answered.load(), 0);
  const auto [status, reply] = steady.post(peer_, text_message("final", "s0"));
  EXPECT_EQ(status, 200) << reply;
}

}  // namespace
