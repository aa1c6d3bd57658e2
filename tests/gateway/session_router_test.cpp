// The session router: per-session order, one job per session at a time, parallel sessions,
// a non-blocking enqueue, and shutdown with a grace period and cancellation.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gateway_test_util.h"
#include "router.h"

namespace cwc::gateway {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using gwtest::make_job;

Job job_for(int session, int index) {
  auto job = make_job("user" + std::to_string(session), std::to_string(index),
                      std::to_string(session) + "-" + std::to_string(index));
  return job;
}

// A one-shot gate the test opens; waiting on it never lasts longer than the timeout.
class Gate {
 public:
  void open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    cv_.notify_all();
  }
  bool wait(std::chrono::milliseconds timeout = 5s) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [this] { return open_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool open_ = false;
};

// Counts finished jobs; the test waits for a number with a timeout.
class Counter {
 public:
  void add() {
    std::lock_guard lock(mutex_);
    ++count_;
    cv_.notify_all();
  }
  bool wait_for(int n, std::chrono::milliseconds timeout = 5s) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return count_ >= n; });
  }
  int count() {
    std::lock_guard lock(mutex_);
    return count_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  int count_ = 0;
};

// A job counts itself as finished before its worker retires it: poll pending() (bounded).
bool wait_idle(SessionRouter& router) {
  const auto deadline = Clock::now() + 2s;
  while (router.pending() != 0 && Clock::now() < deadline) std::this_thread::sleep_for(1ms);
  return router.pending() == 0;
}

TEST(SessionRouter, PerSessionOrderAndAtMostOneJobPerSessionUnderConcurrency) {
  constexpr int kSessions = 20;
  constexpr int kJobs = 50;
  std::array<std::atomic<int>, kSessions> in_flight{};
  std::atomic<int> overlaps{0};
  std::atomic<int> running{0};
  std::atomic<int> max_running{0};
  std::mutex order_mutex;
  std::map<int, std::vector<int>> order;
  Counter finished;

  SessionRouter router(4, [&](const Job& job) {
    const int session = std::stoi(job.sender_id.substr(4));
    if (in_flight[session].fetch_add(1) != 0) ++overlaps;
    const int now = ++running;
    int seen = max_running.load();
    while (now > seen && !max_running.compare_exchange_weak(seen, now)) {
    }
    if (std::stoi(job.text) % 7 == 0) std::this_thread::sleep_for(200us);  // vary the job lengths
    else std::this_thread::yield();
    {
      std::lock_guard lock(order_mutex);
      order[session].push_back(std::stoi(job.text));
    }
    --running;
    in_flight[session].fetch_sub(1);
    finished.add();
  });

  // Enqueue from several producer threads, each owning some sessions (the order a session's
  // messages are enqueued in is the order they must run in).
  std::vector<std::thread> producers;
  for (int p = 0; p < 4; ++p) {
    producers.emplace_back([&, p] {
      for (int j = 0; j < kJobs; ++j) {
        for (int s = p; s < kSessions; s += 4) EXPECT_TRUE(router.enqueue(job_for(s, j)));
      }
    });
  }
  for (auto& t : producers) t.join();

  ASSERT_TRUE(finished.wait_for(kSessions * kJobs)) << "only " << finished.count() << " jobs ran";
  EXPECT_EQ(overlaps.load(), 0) << "two jobs of one session ran at the same time";
  EXPECT_LE(max_running.load(), 4);
  EXPECT_GE(max_running.load(), 2) << "sessions never ran in parallel";
  std::lock_guard lock(order_mutex);
  ASSERT_EQ(order.size(), static_cast<std::size_t>(kSessions));
  std::vector<int> expected(kJobs);
  for (int j = 0; j < kJobs; ++j) expected[j] = j;
  for (const auto& [session, seen] : order) EXPECT_EQ(seen, expected) << "session " << session;
  EXPECT_TRUE(wait_idle(router));
  EXPECT_TRUE(router.shutdown(1000).empty());
}

TEST(SessionRouter, DifferentSessionsOverlap) {
  // Two slow jobs of different sessions: each waits until the other has started. Run serially
  // they would both time out.
  std::mutex mutex;
  std::condition_variable cv;
  int started = 0;
  std::atomic<int> saw_other{0};
  Counter finished;
  SessionRouter router(2, [&](const Job&) {
    std::unique_lock lock(mutex);
    ++started;
    cv.notify_all();
    if (cv.wait_for(lock, 2s, [&] { return started == 2; })) ++saw_other;
    lock.unlock();
    finished.add();
  });
  const auto begin = Clock::now();
  ASSERT_TRUE(router.enqueue(job_for(1, 0)));
  ASSERT_TRUE(router.enqueue(job_for(2, 0)));
  ASSERT_TRUE(finished.wait_for(2, 3s));
  EXPECT_EQ(saw_other.load(), 2);
  EXPECT_LT(Clock::now() - begin, 1s);
}

TEST(SessionRouter, OneSessionNeverUsesTwoWorkers) {
  std::atomic<int> in_flight{0};
  std::atomic<int> max_in_flight{0};
  Counter finished;
  SessionRouter router(4, [&](const Job&) {
    const int now = ++in_flight;
    int seen = max_in_flight.load();
    while (now > seen && !max_in_flight.compare_exchange_weak(seen, now)) {
    }
    std::this_thread::sleep_for(1ms);
    --in_flight;
    finished.add();
  });
  for (int j = 0; j < 20; ++j) ASSERT_TRUE(router.enqueue(job_for(1, j)));
  ASSERT_TRUE(finished.wait_for(20));
  EXPECT_EQ(max_in_flight.load(), 1);
}

TEST(SessionRouter, EnqueueNeverBlocksEvenWhenEveryWorkerIsBusy) {
  Gate gate;
  Counter started;
  Counter finished;
  SessionRouter router(2, [&](const Job&) {
    started.add();
    gate.wait();
    finished.add();
  });
  ASSERT_TRUE(router.enqueue(job_for(1, 0)));
  ASSERT_TRUE(router.enqueue(job_for(2, 0)));
  ASSERT_TRUE(started.wait_for(2));  // both workers are now stuck in a job

  const auto begin = Clock::now();
  for (int j = 1; j <= 500; ++j) ASSERT_TRUE(router.enqueue(job_for(j % 10, j)));
  EXPECT_LT(Clock::now() - begin, 500ms);
  EXPECT_EQ(router.pending(), 502u);  // 2 running + 500 queued
  EXPECT_EQ(started.count(), 2);

  gate.open();
  ASSERT_TRUE(finished.wait_for(502));
  EXPECT_TRUE(wait_idle(router));
}

TEST(SessionRouter, AJobMayEnqueueAFollowUp) {
  // The runner is called without the router's lock held: enqueueing from inside must not deadlock.
  Counter finished;
  SessionRouter* self = nullptr;
  std::atomic<bool> follow_up_queued{false};
  SessionRouter router(1, [&](const Job& job) {
    if (job.text == "0") follow_up_queued = self->enqueue(job_for(1, 1));
    finished.add();
  });
  self = &router;
  ASSERT_TRUE(router.enqueue(job_for(1, 0)));
  ASSERT_TRUE(finished.wait_for(2, 2s));
  EXPECT_TRUE(follow_up_queued.load());
}

TEST(SessionRouter, EnqueueAfterShutdownReturnsFalse) {
  Counter ran;
  SessionRouter router(2, [&](const Job&) { ran.add(); });
  EXPECT_TRUE(router.shutdown(100).empty());
  EXPECT_FALSE(router.enqueue(job_for(1, 0)));
  EXPECT_EQ(router.pending(), 0u);
  EXPECT_EQ(ran.count(), 0);
  EXPECT_TRUE(router.shutdown(100).empty());  // a second shutdown is harmless
}

TEST(SessionRouter, ShutdownReturnsNeverStartedJobsAndCancels) {
  SessionRouter* self = nullptr;
  Counter started;
  std::atomic<bool> wait_result{true};
  std::atomic<bool> saw_cancelled{false};
  std::mutex ran_mutex;
  std::vector<std::string> ran;
  SessionRouter router(1, [&](const Job& job) {
    {
      std::lock_guard lock(ran_mutex);
      ran.push_back(job.stream_id);
    }
    started.add();
    wait_result = self->wait_ms(10000);  // a slow agent; cancellation must cut it short
    saw_cancelled = self->cancelled();
  });
  self = &router;
  ASSERT_TRUE(router.enqueue(job_for(1, 0)));
  ASSERT_TRUE(started.wait_for(1));
  ASSERT_TRUE(router.enqueue(job_for(1, 1)));
  ASSERT_TRUE(router.enqueue(job_for(2, 0)));
  ASSERT_TRUE(router.enqueue(job_for(3, 0)));
  EXPECT_FALSE(router.cancelled());

  std::atomic<bool> cancelled_in_on_cancel{false};
  const auto begin = Clock::now();
  auto left = router.shutdown(50, [&] { cancelled_in_on_cancel = router.cancelled(); });
  const auto took = Clock::now() - begin;
  EXPECT_GE(took, 50ms);  // the grace period was granted
  EXPECT_LT(took, 1500ms);

  EXPECT_TRUE(router.cancelled());
  EXPECT_TRUE(cancelled_in_on_cancel.load());
  EXPECT_FALSE(wait_result.load()) << "wait_ms was not woken by the cancellation";
  EXPECT_TRUE(saw_cancelled.load());
  std::set<std::string> left_ids;
  for (const auto& job : left) left_ids.insert(job.stream_id);
  EXPECT_EQ(left_ids, (std::set<std::string>{"1-1", "2-0", "3-0"}));
  EXPECT_EQ(left.size(), 3u);
  {
    std::lock_guard lock(ran_mutex);
    EXPECT_EQ(ran, std::vector<std::string>{"1-0"});  // the returned jobs never ran
  }
  EXPECT_FALSE(router.enqueue(job_for(4, 0)));
}

TEST(SessionRouter, OnCancelRunsBeforeTheWorkersAreJoined) {
  // The agent's cancel() hook must run while jobs are still running (it aborts their I/O).
  std::atomic<bool> on_cancel_called{false};
  std::atomic<bool> job_saw_on_cancel{false};
  Counter started;
  SessionRouter router(1, [&](const Job&) {
    started.add();
    const auto deadline = Clock::now() + 2s;
    while (!on_cancel_called && Clock::now() < deadline) std::this_thread::sleep_for(1ms);
    job_saw_on_cancel = on_cancel_called.load();
  });
  ASSERT_TRUE(router.enqueue(job_for(1, 0)));
  ASSERT_TRUE(started.wait_for(1));
  router.shutdown(0, [&] { on_cancel_called = true; });
  EXPECT_TRUE(job_saw_on_cancel.load());
}

TEST(SessionRouter, ShutdownWaitsForQueuedWorkWithinTheGrace) {
  Counter finished;
  SessionRouter router(2, [&](const Job&) {
    std::this_thread::sleep_for(2ms);
    finished.add();
  });
  for (int j = 0; j < 10; ++j) ASSERT_TRUE(router.enqueue(job_for(j % 3, j)));
  const auto begin = Clock::now();
  auto left = router.shutdown(3000);
  EXPECT_TRUE(left.empty());
  EXPECT_EQ(finished.count(), 10);
  EXPECT_LT(Clock::now() - begin, 1s);  // returns as soon as the work is done, not after 3 s
  EXPECT_TRUE(router.cancelled());
}

TEST(SessionRouter, WaitMsReturnsFalsePromptlyOnCancellation) {
  SessionRouter router(1, [](const Job&) {});
  // Without cancellation it sleeps and returns true.
  const auto begin = Clock::now();
  EXPECT_TRUE(router.wait_ms(20));
  EXPECT_GE(Clock::now() - begin, 20ms);

  std::atomic<bool> result{true};
  std::atomic<long long> waited_ms{-1};
  std::atomic<bool> waiting{false};
  std::thread waiter([&] {
    const auto start = Clock::now();
    waiting = true;
    result = router.wait_ms(10000);
    waited_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
  });
  while (!waiting) std::this_thread::yield();
  std::this_thread::sleep_for(20ms);
  router.shutdown(0);
  waiter.join();
  EXPECT_FALSE(result.load());
  EXPECT_LT(waited_ms.load(), 1000);

  // Once cancelled, wait_ms returns false at once.
  const auto after = Clock::now();
  EXPECT_FALSE(router.wait_ms(10000));
  EXPECT_LT(Clock::now() - after, 100ms);
}

TEST(SessionRouter, DestructorCancelsRunningJobs) {
  std::atomic<bool> wait_result{true};
  Counter started;
  const auto begin = Clock::now();
  {
    SessionRouter* self = nullptr;
    SessionRouter router(2, [&](const Job&) {
      started.add();
      wait_result = self->wait_ms(10000);
    });
    self = &router;
    ASSERT_TRUE(router.enqueue(job_for(1, 0)));
    ASSERT_TRUE(router.enqueue(job_for(1, 1)));
    ASSERT_TRUE(started.wait_for(1));
  }  // ~SessionRouter: shutdown(0)
  EXPECT_FALSE(wait_result.load());
  EXPECT_EQ(started.count(), 1);  // the second job of the session never started
  EXPECT_LT(Clock::now() - begin, 1500ms);
}

}  // namespace
}  // namespace cwc::gateway
