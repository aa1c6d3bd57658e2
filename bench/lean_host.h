// A core::Host for the scale and memory benchmarks: keeps nothing per message (tests' FakeHost
// records every log line and dispatch, which would be the harness's memory, not the core's),
// a settable clock, and fast non-cryptographic randomness (stream ids must still be distinct,
// which FakeHost's 8-bit counter cannot give beyond 256 streams).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "core/host.h"

namespace cwc::bench {

class LeanHost : public core::Host {
 public:
  void log(core::LogLevel level, std::string_view, std::string_view) override {
    if (level >= core::LogLevel::Warn) warnings.fetch_add(1, std::memory_order_relaxed);
  }
  bool dispatch(const core::InboundMessage& m) override {
    last_stream_id.assign(m.stream_id);
    dispatched.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  std::int64_t now_ms() override { return clock_ms.load(std::memory_order_relaxed); }
  bool random(std::uint8_t* out, std::size_t len) override {
    for (std::size_t i = 0; i < len; ++i) {
      if (i % 8 == 0) word_ = next();
      out[i] = static_cast<std::uint8_t>(word_ >> (8 * (i % 8)));
    }
    return true;
  }
  Result<std::optional<std::string>> store_get(std::string_view, std::string_view) override {
    return std::optional<std::string>();
  }
  bool store_put(std::string_view, std::string_view, std::string_view) override { return true; }

  std::atomic<std::int64_t> clock_ms{1732500000000};
  std::atomic<std::uint64_t> dispatched{0};
  std::atomic<std::uint64_t> warnings{0};
  std::string last_stream_id;  // of the last dispatch (single-threaded use only)

 private:
  std::uint64_t next() {  // splitmix64
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  std::uint64_t state_ = 0x2545f4914f6cdd1dull;
  std::uint64_t word_ = 0;
};

}  // namespace cwc::bench
