// Frames waiting to be shown, ordered by presentation time. The receive thread pushes; the
// presentation thread takes the frames that are due at the engine's audio position.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "mouth.h"
#include "surface.h"

namespace avl {

// One frame as it came off the wire (pixels still encoded: decoding happens when presented, so
// a long buffered session holds compressed bytes, not full RGBA images).
struct EncodedFrame {
  int64_t index = 0;
  int64_t pts_ms = 0;
  int64_t duration_ms = 0;
  Rect rect;
  std::string pixels;
  MouthBlock mouth;  // absent when the server sends no motion
};

class JitterBuffer {
 public:
  // Adds a frame. Frames arrive in index order on one stream, but the buffer does not rely on
  // it. Returns false (and drops it) for a duplicate or a frame older than one already taken.
  bool Push(EncodedFrame frame);

  // Removes and returns, oldest first, every frame with pts_ms <= position_ms. With
  // `contiguous` (delta mode, where each frame draws over the previous one) it stops before
  // the first gap in indices, since a later delta cannot be drawn before a missing one.
  std::vector<EncodedFrame> TakeDue(int64_t position_ms, bool contiguous);

  size_t size() const;
  // End (pts + duration) of the newest frame ever pushed; -1 before the first.
  int64_t newest_end_ms() const;

 private:
  mutable std::mutex mutex_;
  std::map<int64_t, EncodedFrame> frames_;  // by index; pts_ms grows with index
  int64_t last_taken_index_ = -1;
  int64_t newest_end_ms_ = -1;
};

}  // namespace avl
