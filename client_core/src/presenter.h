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
  // The mouth block of the newest frame presented that carried one (absent before).
  const MouthBlock& shown_mouth() const { return shown_mouth_; }

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
  MouthBlock shown_mouth_;
};

// The playback policy every engine shares (preroll, output latency, drain), pure so it is tested
// without a server or an engine: the session feeds it what the stream and the player have done.
struct PlaybackSettings {
  int32_t preroll_ms = 300;
  int32_t output_latency_ms = 0;
};

struct PlaybackInput {
  int64_t audio_buffered_ms = 0;    // handed to the engine's player
  int64_t audio_played_ms = -1;     // consumed by the player; -1 = not started
  int64_t newest_frame_end_ms = -1; // end of the newest frame received; -1 = none yet
  bool stream_over = false;         // every frame has arrived (SessionEnded, or terminal)
  int64_t now_ms = 0;               // a steady clock, for the heard tail of the audio
};

struct PlaybackAdvice {
  bool start_playback = false;
  bool finished = false;
  int64_t heard_ms = -1;
};

class PlaybackPolicy {
 public:
  void Configure(const PlaybackSettings& settings) { settings_ = settings; }
  const PlaybackSettings& settings() const { return settings_; }

  // Before presenting: the position the listener hears now (-1 = nothing yet). Once the player
  // has consumed everything, the last output_latency_ms are still to be heard: the position
  // then follows the steady clock up to the end of the audio.
  int64_t HeardMs(const PlaybackInput& input);
  // After presenting at HeardMs(input); `frames_buffered` is what the present left.
  PlaybackAdvice Advise(const PlaybackInput& input, int32_t frames_buffered);

 private:
  PlaybackSettings settings_;
  bool started_ = false;
  int64_t drained_at_ms_ = -1;  // when the player had consumed everything it was given
};

}  // namespace avl
