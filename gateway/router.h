// The agent router: a queue per session (account + peer), served by a fixed pool of workers.
// A session's messages run one at a time and in order; different sessions run in parallel.
// enqueue() never blocks (it is called from the plugin's dispatch callback on an HTTP thread).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "agents.h"

namespace cwc::gateway {

class SessionRouter {
 public:
  // `run` processes one job on a worker thread.
  using Runner = std::function<void(const Job&)>;

  SessionRouter(std::size_t workers, Runner run);
  ~SessionRouter();
  SessionRouter(const SessionRouter&) = delete;
  SessionRouter& operator=(const SessionRouter&) = delete;

  // false once shutdown has begun (the caller tells the user to retry).
  bool enqueue(Job job);

  // Stops accepting, waits up to `grace_ms` for queued and running jobs, and returns the jobs
  // that never started (their streams must be finished by the caller). Running jobs see
  // cancelled() == true after the grace period; the workers are joined before returning.
  // `on_cancel` runs right after cancelled() turns true and before the workers are joined.
  std::vector<Job> shutdown(int grace_ms, const std::function<void()>& on_cancel = {});

  bool cancelled() const;
  // Sleeps up to `ms` unless cancellation comes first (returns false then).
  bool wait_ms(int ms);

  std::size_t pending() const;

 private:
  void worker();

  Runner run_;
  mutable std::mutex mutex_;
  std::condition_variable work_ready_;
  std::condition_variable idle_;
  std::condition_variable cancel_cv_;
  std::map<std::string, std::deque<Job>> queues_;  // session → waiting jobs
  std::deque<std::string> ready_;                   // sessions with work and no running job
  std::set<std::string> running_;
  bool accepting_ = true;
  bool stopping_ = false;
  bool cancelled_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace cwc::gateway
