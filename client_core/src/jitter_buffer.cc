#include "jitter_buffer.h"

#include <algorithm>
#include <utility>

namespace avl {

bool JitterBuffer::Push(EncodedFrame frame) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (frame.index <= last_taken_index_ || frames_.count(frame.index) != 0) return false;
  newest_end_ms_ = std::max(newest_end_ms_, frame.pts_ms + frame.duration_ms);
  const int64_t index = frame.index;
  frames_.emplace(index, std::move(frame));
  return true;
}

std::vector<EncodedFrame> JitterBuffer::TakeDue(int64_t position_ms, bool contiguous) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<EncodedFrame> due;
  while (!frames_.empty()) {
    auto it = frames_.begin();
    if (it->second.pts_ms > position_ms) break;
    if (contiguous && it->first != last_taken_index_ + 1) break;
    last_taken_index_ = it->first;
    due.push_back(std::move(it->second));
    frames_.erase(it);
  }
  return due;
}

size_t JitterBuffer::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return frames_.size();
}

int64_t JitterBuffer::newest_end_ms() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return newest_end_ms_;
}

}  // namespace avl
