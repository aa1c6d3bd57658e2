#include "core/lanes.h"

#include <algorithm>

namespace cwc::core {

void UserLanes::arrive(const std::string& lane, const std::string& stream_id, bool ready, std::size_t limit) {
  std::lock_guard lock(mutex_);
  if (where_.count(stream_id)) return;  // already known (a retry): keep its place
  Lane& l = lanes_[lane];
  l.limit = std::max<std::size_t>(1, limit);
  l.waiting.push_back({stream_id, ready});
  where_[stream_id] = {lane, false};
}

void UserLanes::mark_ready(std::string_view stream_id) {
  std::lock_guard lock(mutex_);
  auto where = where_.find(std::string(stream_id));
  if (where == where_.end() || where->second.in_flight) return;
  auto lane = lanes_.find(where->second.lane);
  if (lane == lanes_.end()) return;
  for (auto& w : lane->second.waiting) {
    if (w.stream_id == stream_id) w.ready = true;
  }
}

std::optional<std::string> UserLanes::take_next(const std::string& lane) {
  std::lock_guard lock(mutex_);
  auto it = lanes_.find(lane);
  if (it == lanes_.end()) return std::nullopt;
  Lane& l = it->second;
  if (l.waiting.empty() || !l.waiting.front().ready || l.in_flight >= l.limit) return std::nullopt;
  std::string id = std::move(l.waiting.front().stream_id);
  l.waiting.pop_front();
  ++l.in_flight;
  where_[id].in_flight = true;
  return id;
}

std::string UserLanes::release(std::string_view stream_id) {
  std::lock_guard lock(mutex_);
  auto where = where_.find(std::string(stream_id));
  if (where == where_.end()) return {};
  std::string lane_key = where->second.lane;
  auto lane = lanes_.find(lane_key);
  if (lane != lanes_.end()) {
    Lane& l = lane->second;
    if (where->second.in_flight) {
      if (l.in_flight > 0) --l.in_flight;
    } else {
      l.waiting.erase(std::remove_if(l.waiting.begin(), l.waiting.end(),
                                     [&](const Waiting& w) { return w.stream_id == stream_id; }),
                      l.waiting.end());
    }
  }
  where_.erase(where);
  drop_if_idle_locked(lane_key);
  return lane_key;
}

void UserLanes::drop_if_idle_locked(const std::string& lane) {
  auto it = lanes_.find(lane);
  if (it != lanes_.end() && it->second.in_flight == 0 && it->second.waiting.empty()) lanes_.erase(it);
}

std::size_t UserLanes::waiting(const std::string& lane) const {
  std::lock_guard lock(mutex_);
  auto it = lanes_.find(lane);
  return it == lanes_.end() ? 0 : it->second.waiting.size();
}

std::size_t UserLanes::in_flight(const std::string& lane) const {
  std::lock_guard lock(mutex_);
  auto it = lanes_.find(lane);
  return it == lanes_.end() ? 0 : it->second.in_flight;
}

}  // namespace cwc::core
