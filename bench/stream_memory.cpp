// Memory of the stream table, measured in-process through core::Instance (what a host holds):
//  1. RSS with N live streams of C bytes of answer each (default 10 000 × 2 KiB; goal ≤ 64 MB);
//  2. RSS over a simulated TTL churn: messages keep arriving at N / ttl per second, each answer
//     (C bytes) is pushed, finished and refreshed, on_tick runs every simulated second and
//     expires streams after streamTtlSeconds. The host clock is simulated, so 30 minutes take
//     seconds. Memory must stay flat once the first TTL has passed.
//   cwc_stream_memory [--streams N] [--content-bytes C] [--ttl-seconds T] [--minutes M]
//                     [--max-open-streams S]
// With the default maxOpenStreams (10000) the table is full during the first TTL and each new
// stream evicts the oldest finished one; a larger S shows the TTL sweep alone bounding it.
// Prints Markdown tables (see docs/performance.md, "Scale").
#include <malloc.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <deque>
#include <vector>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>

#include "core/instance.h"
#include "lean_host.h"
#include "support/wecom_requests.h"

namespace {

using cwc::testing::kAesKey;
using cwc::testing::kToken;

double rss_mib() {
  std::ifstream statm("/proc/self/statm");
  long size = 0, resident = 0;
  statm >> size >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

double heap_in_use_mib() {  // bytes malloc has handed out and not got back (no fragmentation)
  const struct mallinfo2 mi = mallinfo2();
  return static_cast<double>(mi.uordblks + mi.hblkhd) / (1024.0 * 1024.0);
}

long arg(int argc, char** argv, const std::string& name, long fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (argv[i] == name) return std::strtol(argv[i + 1], nullptr, 10);
  }
  return fallback;
}

class Driver {
 public:
  Driver(long ttl_seconds, long max_open_streams) {
    auto created = cwc::core::Instance::create(
        std::string(R"({"token":")") + kToken + R"(","encodingAESKey":")" + kAesKey + R"(","streamTtlSeconds":)" +
            std::to_string(ttl_seconds) + R"(,"maxOpenStreams":)" + std::to_string(max_open_streams) +
            R"(,"dm":{"policy":"open","allowFrom":["*"]}})",
        host_);
    if (!created) {
      std::cerr << "config: " << created.error().describe() << "\n";
      std::exit(2);
    }
    instance_ = std::move(created.value());
  }

  // One user message (each from its own user, so per-user ordering never queues it) with its
  // answer: first callback, push, finish (unless `keep_open`: the
  // agent is still answering), one refresh (WeCom's).
  bool converse(const std::string& answer, bool keep_open = false) {
    const std::size_t i = next_++;
    auto first = peer_.callback(R"({"msgid":"m)" + std::to_string(i) +
                                R"(","aibotid":"AIBOTID","chattype":"single","from":{"userid":"u)" +
                                std::to_string(i) + R"("},"msgtype":"text","text":{"content":"hello )" +
                                std::to_string(i) + R"("}})");
    const auto dispatched = host_.dispatched.load();
    if (instance_->handle({"POST", "/wecom", first.query, "", first.body, ""}).status != 200) return false;
    if (host_.dispatched.load() != dispatched + 1) return false;  // not handed to the agent
    const std::string stream_id = host_.last_stream_id;
    instance_->push(stream_id, answer, cwc::stream::PushMode::Append);
    if (keep_open) unfinished_.push_back(stream_id);
    else instance_->finish(stream_id, cwc::stream::FinishKind::Done, "");
    opened_at_.push_back(host_.clock_ms.load());
    auto refresh = peer_.callback(R"({"msgid":"r)" + std::to_string(i) +
                                  R"(","aibotid":"AIBOTID","chattype":"single","from":{"userid":"u"},)"
                                  R"("msgtype":"stream","stream":{"id":")" + stream_id + R"("}})");
    auto res = instance_->handle({"POST", "/wecom", refresh.query, "", refresh.body, ""});
    return res.status == 200 && !res.body.empty();
  }

  void finish_all() {
    for (const auto& id : unfinished_) instance_->finish(id, cwc::stream::FinishKind::Done, "");
    unfinished_.clear();
  }
  // Streams opened less than a TTL ago (finished or not): what the table must still hold.
  long live_streams(long ttl_seconds) {
    const std::int64_t cutoff = host_.clock_ms.load() - ttl_seconds * 1000;
    while (!opened_at_.empty() && opened_at_.front() <= cutoff) opened_at_.pop_front();
    return static_cast<long>(opened_at_.size());
  }
  // Unfinished streams, as the plugin's status reports them.
  long open_streams() const {
    long n = 0;
    const nlohmann::json doc = status();  // a named object: range-for over a temporary's member dangles
    for (const auto& a : doc["accounts"]) n += a.value("openStreams", 0L);
    return n;
  }
  // Entries the stream table holds (finished or not), as the plugin's status reports them.
  long table_entries() const { return status().value("streams", 0L); }
  nlohmann::json status() const { return nlohmann::json::parse(instance_->status_json()); }
  void advance_one_second() {
    host_.clock_ms.fetch_add(1000);
    instance_->tick();
  }
  std::uint64_t warnings() const { return host_.warnings.load(); }

 private:
  cwc::bench::LeanHost host_;
  cwc::testing::WecomPeer peer_;
  std::unique_ptr<cwc::core::Instance> instance_;
  std::size_t next_ = 0;
  std::vector<std::string> unfinished_;
  std::deque<std::int64_t> opened_at_;
};

}  // namespace

int main(int argc, char** argv) {
  const long streams = arg(argc, argv, "--streams", 10000);
  const long content_bytes = arg(argc, argv, "--content-bytes", 2048);
  const long ttl_seconds = arg(argc, argv, "--ttl-seconds", 600);
  const long minutes = arg(argc, argv, "--minutes", 30);
  const long max_open_streams = arg(argc, argv, "--max-open-streams", 10000);  // the plugin's default
  const std::string answer(static_cast<std::size_t>(content_bytes), 'a');

  const double rss_start = rss_mib();
  Driver driver(ttl_seconds, max_open_streams);
  const double rss_empty = rss_mib();
  const double heap_empty = heap_in_use_mib();
  for (long i = 0; i < streams; ++i) {
    if (!driver.converse(answer, /*keep_open=*/true)) {
      std::cerr << "message " << i << " failed\n";
      return 1;
    }
  }
  const double rss_full = rss_mib();
  const double heap_full = heap_in_use_mib();
  std::printf("## %ld live streams × %ld bytes of answer\n\n", streams, content_bytes);
  std::printf("| | RSS | heap in use |\n| --- | --- | --- |\n");
  std::printf("| process start | %.1f MiB | |\n", rss_start);
  std::printf("| instance created, no stream | %.1f MiB | %.1f MiB |\n", rss_empty, heap_empty);
  std::printf("| %ld live streams, all still answering (open: %ld) | %.1f MiB | %.1f MiB |\n", streams,
              driver.open_streams(), rss_full, heap_full);
  std::printf("| per stream | %.0f bytes | %.0f bytes |\n\n", (rss_full - rss_empty) * 1048576.0 / static_cast<double>(streams),
              (heap_full - heap_empty) * 1048576.0 / static_cast<double>(streams));

  // Churn: the agent finishes those, and arrivals at streams/ttl per second keep ~`streams`
  // live (within their TTL) in steady state.
  driver.finish_all();
  const double per_second = static_cast<double>(streams) / static_cast<double>(ttl_seconds);
  std::printf("## churn: %.2f messages/s, streamTtlSeconds %ld, maxOpenStreams %ld, %ld simulated minutes\n\n",
              per_second, ttl_seconds, max_open_streams, minutes);
  std::printf("| simulated minute | messages so far | opened within TTL | table entries | RSS | heap in use |\n"
              "| --- | --- | --- | --- | --- | --- |\n");
  std::printf("| 0 | %ld | %ld | %ld | %.1f MiB | %.1f MiB |\n", streams, driver.live_streams(ttl_seconds),
              driver.table_entries(), rss_mib(), heap_in_use_mib());
  double due = 0;
  long sent = streams;
  double rss_max = rss_full;
  for (long second = 1; second <= minutes * 60; ++second) {
    driver.advance_one_second();
    for (due += per_second; due >= 1.0; due -= 1.0) {
      if (!driver.converse(answer)) {
        std::cerr << "message " << sent << " failed at simulated second " << second << "\n";
        return 1;
      }
      ++sent;
    }
    const double rss = rss_mib();
    if (rss > rss_max) rss_max = rss;
    if (second % 60 == 0) {
      std::printf("| %ld | %ld | %ld | %ld | %.1f MiB | %.1f MiB |\n", second / 60, sent,
                  driver.live_streams(ttl_seconds), driver.table_entries(), rss, heap_in_use_mib());
    }
  }
  std::printf("\npeak RSS during churn: %.1f MiB; warnings logged: %llu\n", rss_max,
              static_cast<unsigned long long>(driver.warnings()));
  return 0;
}
