// The clock API's logic: given the engine's audio playback position, bring the persistent
// surface to the frame that belongs at that time and report what changed. Video follows the
// audio clock, never a wall clock, so it cannot drift from the sound.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "jitter_buffer.h"
#include "pixel_decoder.h"
#include "status.h"
#include "surface.h"

namespace avl {

enum class FrameMode : int32_t { kFull = 1, kDelta = 2 };

struct PresentResult {
  bool changed = false;
  int64_t frame_index = -1;  // frame now on the surface; -1 = base image
  int64_t pts_ms = 0;
  int64_t duration_ms = 0;
  Rect dirty;
  int32_t frames_applied = 0;
  int32_t frames_dropped = 0;
  int32_t frames_buffered = 0;
  bool starved = false;
};

class Presenter {
 public:
  Presenter(int32_t width, int32_t height, WireFormat format, FrameMode mode);

  // Draws the session's base (idle) image; every mode starts from it.
  Error SetBase(const EncodedFrame& base);

  // `streaming`: frames may still arrive (for the starved flag). Presentation thread only.
  Error Present(JitterBuffer* buffer, int64_t audio_position_ms, bool streaming,
                PresentResult* result);

  const Surface& surface() const { return surface_; }

 private:
  Error Draw(const EncodedFrame& frame, Rect* dirty);

  Surface surface_;
  WireFormat format_;
  FrameMode mode_;
  PixelDecoder decoder_;
  std::vector<uint8_t> scratch_;  // decoded RGBA of the rectangle being drawn
  int64_t shown_index_ = -1;
  int64_t shown_pts_ms_ = 0;
  int64_t shown_duration_ms_ = 0;
};

}  // namespace avl
