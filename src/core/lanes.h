// Per-user message lanes: WeCom allows about 3 in-flight messages per user, and a user's
// messages must reach the agent in the order they were sent — even when an earlier one is still
// downloading its image. A lane holds a user's messages that have a stream but were not yet
// handed to the host; at most `limit` of them are in flight (dispatched, stream not finished).
// Thread-safe. Holds stream ids only; the messages themselves live with the caller.
#pragma once

#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace cwc::core {

class UserLanes {
 public:
  // A new message of `lane` (e.g. account + userid). `ready` is false while its media downloads.
  void arrive(const std::string& lane, const std::string& stream_id, bool ready, std::size_t limit);
  // The message's media is in (or failed): it may be dispatched when its turn comes.
  void mark_ready(std::string_view stream_id);
  // Removes and returns the next message of `lane` that may be dispatched now: the front of the
  // lane if it is ready and fewer than `limit` are in flight. It counts as in flight until
  // release(). One at a time, so a caller that releases while dispatching keeps the order.
  std::optional<std::string> take_next(const std::string& lane);
  // The stream ended (finished, failed, expired, refused): its slot frees up, or it leaves the
  // lane if it was still waiting. Returns the lane ("" if unknown) so the caller can pump it.
  std::string release(std::string_view stream_id);

  std::size_t waiting(const std::string& lane) const;
  std::size_t in_flight(const std::string& lane) const;

 private:
  struct Waiting {
    std::string stream_id;
    bool ready = false;
  };
  struct Lane {
    std::deque<Waiting> waiting;
    std::size_t in_flight = 0;
    std::size_t limit = 3;
  };
  struct Where {
    std::string lane;
    bool in_flight = false;
  };

  void drop_if_idle_locked(const std::string& lane);

  mutable std::mutex mutex_;
  std::unordered_map<std::string, Lane> lanes_;
  std::unordered_map<std::string, Where> where_;  // stream id → its lane and state
};

}  // namespace cwc::core
