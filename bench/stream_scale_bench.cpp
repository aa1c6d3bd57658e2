// Does the cost of a request depend on how many streams are live? Each benchmark fills one
// core::Instance with N open streams (N = 1 … 100k, each opened by a real signed WeCom text
// message and given a 300-byte answer), then measures one whole WeCom request through
// core::Instance::handle, as the HTTP server calls it. Refreshes target streams spread over the
// whole table (4096 distinct ones, cycled), so a large table also pays its cache misses.
// Run: build/bench/cwc_stream_scale_bench (see docs/performance.md, "Scale").
#include <benchmark/benchmark.h>

#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/instance.h"
#include "lean_host.h"
#include "support/wecom_requests.h"

namespace {

using cwc::testing::kAesKey;
using cwc::testing::kToken;

constexpr std::size_t kDistinctRefreshes = 4096;

std::string text_message(std::size_t i) {
  return R"({"msgid":"m)" + std::to_string(i) + R"(","aibotid":"AIBOTID","chattype":"single","from":{"userid":"u)" +
         std::to_string(i) +
         R"("},"response_url":"https://qyapi.weixin.qq.com/cgi-bin/aibot/response?response_code=R","msgtype":"text",)"
         R"("text":{"content":"你好，Clawdbot，请帮我总结一下今天的会议。"}})";
}

std::string refresh_message(const std::string& stream_id) {
  return R"({"msgid":"r","aibotid":"AIBOTID","chattype":"single","from":{"userid":"zhangsan"},"msgtype":"stream",)"
         R"("stream":{"id":")" + stream_id + R"("}})";
}

// One instance with `n` live streams and the signed requests to drive it. Built once per n.
struct Fixture {
  cwc::bench::LeanHost host;
  std::unique_ptr<cwc::core::Instance> instance;
  std::vector<std::string> stream_ids;
  std::vector<cwc::testing::WecomPeer::Signed> refreshes;
  std::size_t next_message = 0;

  explicit Fixture(std::size_t n) {
    auto created = cwc::core::Instance::create(std::string(R"({"token":")") + kToken + R"(","encodingAESKey":")" +
                                                   kAesKey + R"(","maxOpenStreams":1000000,)"
                                                   R"("dm":{"policy":"open","allowFrom":["*"]}})",
                                               host);
    if (!created) throw std::runtime_error(created.error().describe());
    instance = std::move(created.value());
    cwc::testing::WecomPeer peer;
    const std::string answer(300, 'x');
    stream_ids.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      auto req = peer.callback(text_message(i));
      auto res = instance->handle({"POST", "/wecom", req.query, "", req.body, ""});
      if (res.status != 200 || host.dispatched.load() != i + 1) throw std::runtime_error("open failed: " + res.body);
      stream_ids.push_back(host.last_stream_id);
      instance->push(host.last_stream_id, answer, cwc::stream::PushMode::Append);
    }
    next_message = n;
    const std::size_t distinct = std::min(n, kDistinctRefreshes);
    for (std::size_t k = 0; k < distinct; ++k) {
      // Spread over the table: the k-th of `distinct` evenly spaced streams.
      refreshes.push_back(peer.callback(refresh_message(stream_ids[k * n / distinct])));
    }
  }
};

Fixture& fixture(std::size_t n) {
  static std::map<std::size_t, std::unique_ptr<Fixture>> built;
  auto& slot = built[n];
  if (!slot) slot = std::make_unique<Fixture>(n);
  return *slot;
}

// A WeCom refresh (verify, decrypt, parse, stream-table lookup, encrypt + sign the 300-byte
// answer) with N streams live.
void BM_RefreshWithLiveStreams(benchmark::State& state) {
  auto& f = fixture(static_cast<std::size_t>(state.range(0)));
  std::size_t i = 0;
  for (auto _ : state) {
    const auto& req = f.refreshes[i++ % f.refreshes.size()];
    auto res = f.instance->handle({"POST", "/wecom", req.query, "", req.body, ""});
    if (res.status != 200) state.SkipWithError("refresh failed");
    benchmark::DoNotOptimize(res);
  }
  state.counters["live_streams"] = static_cast<double>(f.stream_ids.size());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RefreshWithLiveStreams)->Arg(1)->Arg(100)->Arg(1000)->Arg(10000)->Arg(100000);

// A refresh of an unknown (expired) stream id with N streams live: the lookup misses and the
// answer is finish:true.
void BM_UnknownRefreshWithLiveStreams(benchmark::State& state) {
  auto& f = fixture(static_cast<std::size_t>(state.range(0)));
  cwc::testing::WecomPeer peer;
  const auto req = peer.callback(refresh_message("s00000000000000000000000000000000"));
  for (auto _ : state) {
    auto res = f.instance->handle({"POST", "/wecom", req.query, "", req.body, ""});
    benchmark::DoNotOptimize(res);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_UnknownRefreshWithLiveStreams)->Arg(1)->Arg(100)->Arg(1000)->Arg(10000)->Arg(100000);

// A new user message (policy, dedupe record, new stream, dispatch, first reply) with N streams
// live. Each iteration adds a stream, so N grows by the iteration count (~1e5 at most); the
// signed requests are built outside the timed region.
void BM_NewMessageWithLiveStreams(benchmark::State& state) {
  auto& f = fixture(static_cast<std::size_t>(state.range(0)));
  cwc::testing::WecomPeer peer;
  constexpr std::size_t kBatch = 256;
  std::vector<cwc::testing::WecomPeer::Signed> batch;
  std::size_t used = kBatch;
  for (auto _ : state) {
    if (used == kBatch) {
      state.PauseTiming();
      batch.clear();
      for (std::size_t k = 0; k < kBatch; ++k) batch.push_back(peer.callback(text_message(f.next_message++)));
      used = 0;
      state.ResumeTiming();
    }
    const auto& req = batch[used++];
    auto res = f.instance->handle({"POST", "/wecom", req.query, "", req.body, ""});
    if (res.status != 200) state.SkipWithError("open failed");
    benchmark::DoNotOptimize(res);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_NewMessageWithLiveStreams)->Arg(1)->Arg(100)->Arg(1000)->Arg(10000)->Arg(100000)->Iterations(20000);

}  // namespace

BENCHMARK_MAIN();
