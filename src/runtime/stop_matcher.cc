#include "runtime/stop_matcher.h"

#include <algorithm>
#include <utility>

#include "core/error.h"

namespace ug {

StopMatcher::StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {
  for (size_t i = 0; i < stops_.size(); ++i) {
    UG_CHECK(!stops_[i].empty(), "stop strings: entry {} is empty (empty stops are not allowed)",
             i);
  }
}

StopMatcher::Result StopMatcher::push(std::string_view new_text) {
  if (stopped()) return {"", true};
  held_.append(new_text);

  // The stop that ends first wins; held_ never contains a complete stop, so any match found
  // here ends inside new_text.
  size_t best_end = std::string::npos, best_pos = 0;
  for (size_t i = 0; i < stops_.size(); ++i) {
    const size_t pos = held_.find(stops_[i]);
    if (pos == std::string::npos) continue;
    const size_t end = pos + stops_[i].size();
    if (end < best_end || (end == best_end && pos < best_pos)) {
      best_end = end;
      best_pos = pos;
      matched_ = i;
    }
  }
  if (stopped()) {
    Result result{held_.substr(0, best_pos), true};
    held_.clear();
    return result;
  }
  const size_t keep_from = holdback_start();
  Result result{held_.substr(0, keep_from), false};
  held_.erase(0, keep_from);
  return result;
}

std::string StopMatcher::flush() {
  return std::exchange(held_, std::string());  // empty once stopped: push cleared it
}

// Start of the longest suffix of held_ that is a proper prefix of some stop string; a stop can
// only still begin at or after it. Returns held_.size() when nothing needs holding back.
size_t StopMatcher::holdback_start() const {
  size_t longest = 0;
  for (const std::string& stop : stops_) {
    const size_t max_len = std::min(stop.size() - 1, held_.size());
    for (size_t len = max_len; len > longest; --len) {
      const std::string_view tail = std::string_view(held_).substr(held_.size() - len);
      if (tail == std::string_view(stop).substr(0, len)) {
        longest = len;
        break;
      }
    }
  }
  return held_.size() - longest;
}

}  // namespace ug
