#include "router.h"

#include <chrono>

namespace cwc::gateway {

SessionRouter::SessionRouter(std::size_t workers, Runner run) : run_(std::move(run)) {
  for (std::size_t i = 0; i < workers; ++i) workers_.emplace_back([this] { worker(); });
}

SessionRouter::~SessionRouter() { shutdown(0); }

bool SessionRouter::enqueue(Job job) {
  std::lock_guard lock(mutex_);
  if (!accepting_) return false;
  const std::string key = job.session_key();
  auto& queue = queues_[key];
  const bool was_idle = queue.empty() && !running_.count(key);
  queue.push_back(std::move(job));
  if (was_idle) {
    ready_.push_back(key);
    work_ready_.notify_one();
  }
  return true;
}

void SessionRouter::worker() {
  std::unique_lock lock(mutex_);
  while (true) {
    work_ready_.wait(lock, [this] { return stopping_ || !ready_.empty(); });
    if (ready_.empty()) return;  // stopping and nothing left to start
    const std::string key = ready_.front();
    ready_.pop_front();
    auto& queue = queues_[key];
    Job job = std::move(queue.front());
    queue.pop_front();
    running_.insert(key);
    lock.unlock();
    run_(job);
    lock.lock();
    running_.erase(key);
    auto it = queues_.find(key);
    if (it != queues_.end() && !it->second.empty()) {
      ready_.push_back(key);
      work_ready_.notify_one();
    } else if (it != queues_.end()) {
      queues_.erase(it);
    }
    if (running_.empty() && ready_.empty()) idle_.notify_all();
  }
}

std::vector<Job> SessionRouter::shutdown(int grace_ms, const std::function<void()>& on_cancel) {
  std::vector<Job> never_started;
  std::unique_lock lock(mutex_);
  if (workers_.empty()) return never_started;
  accepting_ = false;
  idle_.wait_for(lock, std::chrono::milliseconds(grace_ms), [this] { return running_.empty() && ready_.empty(); });
  // Whatever has not started by now will not: hand it back so its stream can be finished.
  for (auto& [key, queue] : queues_) {
    for (auto& job : queue) never_started.push_back(std::move(job));
    queue.clear();
  }
  ready_.clear();
  cancelled_ = true;
  stopping_ = true;
  cancel_cv_.notify_all();
  work_ready_.notify_all();
  lock.unlock();
  if (on_cancel) on_cancel();
  for (auto& t : workers_) t.join();
  workers_.clear();
  return never_started;
}

bool SessionRouter::cancelled() const {
  std::lock_guard lock(mutex_);
  return cancelled_;
}

bool SessionRouter::wait_ms(int ms) {
  std::unique_lock lock(mutex_);
  return !cancel_cv_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return cancelled_; });
}

std::size_t SessionRouter::pending() const {
  std::lock_guard lock(mutex_);
  std::size_t n = running_.size();
  for (const auto& [key, queue] : queues_) n += queue.size();
  return n;
}

}  // namespace cwc::gateway
