#include "core/lanes.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace cwc::core {
namespace {

TEST(UserLanes, LimitsInFlightAndKeepsArrivalOrder) {
  UserLanes lanes;
  for (const char* id : {"s1", "s2", "s3", "s4"}) lanes.arrive("u", id, true, 3);
  EXPECT_EQ(lanes.take_next("u"), "s1");
  EXPECT_EQ(lanes.take_next("u"), "s2");
  EXPECT_EQ(lanes.take_next("u"), "s3");
  EXPECT_EQ(lanes.take_next("u"), std::nullopt) << "three in flight";
  EXPECT_EQ(lanes.waiting("u"), 1u);
  EXPECT_EQ(lanes.release("s2"), "u");
  EXPECT_EQ(lanes.take_next("u"), "s4");
  EXPECT_EQ(lanes.in_flight("u"), 3u);
}

TEST(UserLanes, AMessageThatIsNotReadyHoldsBackLaterOnes) {
  UserLanes lanes;
  lanes.arrive("u", "image", /*ready=*/false, 3);
  lanes.arrive("u", "text", true, 3);
  EXPECT_EQ(lanes.take_next("u"), std::nullopt);
  lanes.mark_ready("image");
  EXPECT_EQ(lanes.take_next("u"), "image");
  EXPECT_EQ(lanes.take_next("u"), "text");
}

TEST(UserLanes, ReleasingAWaitingMessageRemovesItAndIdleLanesVanish) {
  UserLanes lanes;
  lanes.arrive("u", "a", false, 1);
  lanes.arrive("u", "b", true, 1);
  EXPECT_EQ(lanes.release("a"), "u");
  EXPECT_EQ(lanes.take_next("u"), "b");
  EXPECT_EQ(lanes.release("b"), "u");
  EXPECT_EQ(lanes.waiting("u"), 0u);
  EXPECT_EQ(lanes.in_flight("u"), 0u);
  EXPECT_EQ(lanes.release("unknown"), "");
  lanes.arrive("v", "c", true, 2);
  lanes.arrive("v", "c", true, 2);  // a retry keeps its single place
  EXPECT_EQ(lanes.waiting("v"), 1u);
}

TEST(UserLanes, ConcurrentArrivalsAndReleasesKeepCountsRight) {
  UserLanes lanes;
  std::atomic<int> dispatched{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        const std::string id = std::to_string(t) + "-" + std::to_string(i);
        lanes.arrive("u" + std::to_string(t % 2), id, true, 3);
        while (auto next = lanes.take_next("u" + std::to_string(t % 2))) {
          ++dispatched;
          lanes.release(*next);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (const char* lane : {"u0", "u1"}) {
    while (auto next = lanes.take_next(lane)) {
      ++dispatched;
      lanes.release(*next);
    }
    EXPECT_EQ(lanes.in_flight(lane), 0u);
    EXPECT_EQ(lanes.waiting(lane), 0u);
  }
  EXPECT_EQ(dispatched.load(), 2000);
}

}  // namespace
}  // namespace cwc::core
