// Helpers shared by the gateway unit tests: a scratch directory, an environment variable
// override, a recording ReplySink, and Job construction.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "agents.h"

#include "support/temp_dir.h"

namespace cwc::gateway::gwtest {

using TempDir = cwc::testing::TempDir;

// Sets (or unsets, with nullopt) an environment variable for the scope; restores it afterwards.
class ScopedEnv {
 public:
  ScopedEnv(std::string name, const std::optional<std::string>& value) : name_(std::move(name)) {
    if (const char* old = std::getenv(name_.c_str())) old_ = old;
    if (value) ::setenv(name_.c_str(), value->c_str(), 1);
    else ::unsetenv(name_.c_str());
  }
  ~ScopedEnv() {
    if (old_) ::setenv(name_.c_str(), old_->c_str(), 1);
    else ::unsetenv(name_.c_str());
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

// A ReplySink that records everything. cancel() wakes wait_ms() like the router does; every
// method is thread-safe so a test thread may cancel while an agent runs.
class RecordingSink : public ReplySink {
 public:
  void push(const std::string& block) override {
    std::lock_guard lock(mutex_);
    blocks_.push_back(block);
    if (finished_) pushed_after_finish_ = true;
  }
  void done() override { finish("done"); }
  void fail(const std::string& text) override { finish("fail: " + text); }
  bool cancelled() const override {
    std::lock_guard lock(mutex_);
    return cancelled_;
  }
  bool wait_ms(int ms) override {
    std::unique_lock lock(mutex_);
    waiting_ = true;
    cv_.notify_all();
    const bool cancelled = cv_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return cancelled_; });
    waiting_ = false;
    return !cancelled;
  }

  void cancel() {
    std::lock_guard lock(mutex_);
    cancelled_ = true;
    cv_.notify_all();
  }
  // Blocks until an agent sits in wait_ms (or the timeout passes); true if it does.
  bool wait_until_waiting(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [this] { return waiting_; });
  }

  std::vector<std::string> blocks() const {
    std::lock_guard lock(mutex_);
    return blocks_;
  }
  std::string joined() const {
    std::string out;
    for (const auto& b : blocks()) out += b;
    return out;
  }
  // "" while running, "done" or "fail: <text>" afterwards.
  std::string outcome() const {
    std::lock_guard lock(mutex_);
    return outcome_;
  }
  int finish_calls() const {
    std::lock_guard lock(mutex_);
    return finish_calls_;
  }
  bool pushed_after_finish() const {
    std::lock_guard lock(mutex_);
    return pushed_after_finish_;
  }

 private:
  void finish(std::string outcome) {
    std::lock_guard lock(mutex_);
    ++finish_calls_;
    if (!finished_) outcome_ = std::move(outcome);
    finished_ = true;
  }

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::string> blocks_;
  std::string outcome_;
  int finish_calls_ = 0;
  bool finished_ = false;
  bool pushed_after_finish_ = false;
  bool cancelled_ = false;
  bool waiting_ = false;
};

inline Job make_job(const std::string& peer, const std::string& text, const std::string& stream_id = "s1") {
  Job job;
  job.account_id = "default";
  job.target = "wecom:" + peer;
  job.sender_id = peer;
  job.message_id = "msg-" + stream_id;
  job.msgtype = "text";
  job.text = text;
  job.stream_id = stream_id;
  job.media_json = "[]";
  return job;
}

inline constexpr const char* kShutdownText = "The gateway is shutting down; please send your message again.";

}  // namespace cwc::gateway::gwtest
