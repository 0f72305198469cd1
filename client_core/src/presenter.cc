#include "presenter.h"

#include <algorithm>

namespace avl {

Presenter::Presenter(int32_t width, int32_t height, WireFormat format, FrameMode mode)
    : surface_(width, height), format_(format), mode_(mode) {}

Error Presenter::SetBase(const EncodedFrame& base) {
  if (!(base.rect == Rect{0, 0, surface_.width(), surface_.height()})) {
    return MakeError(AVL_ERR_PROTOCOL, "base frame rect " + std::to_string(base.rect.width) + "x" +
                                           std::to_string(base.rect.height) +
                                           " does not cover the " +
                                           std::to_string(surface_.width()) + "x" +
                                           std::to_string(surface_.height()) + " surface");
  }
  Rect ignored;
  return Draw(base, &ignored);
}

Error Presenter::Draw(const EncodedFrame& frame, Rect* dirty) {
  if (frame.rect.empty()) return Error::Ok();  // nothing changed since the previous frame
  if (!surface_.Contains(frame.rect)) {
    return MakeError(AVL_ERR_PROTOCOL,
                     "frame " + std::to_string(frame.index) + " rect (" +
                         std::to_string(frame.rect.x) + "," + std::to_string(frame.rect.y) + " " +
                         std::to_string(frame.rect.width) + "x" +
                         std::to_string(frame.rect.height) + ") leaves the surface");
  }
  Error error =
      decoder_.Decode(format_, frame.pixels, frame.rect.width, frame.rect.height, &scratch_);
  if (!error.ok()) {
    error.message = "frame " + std::to_string(frame.index) + ": " + error.message;
    return error;
  }
  surface_.Blit(frame.rect, scratch_.data());
  *dirty = Union(*dirty, frame.rect);
  return Error::Ok();
}

Error Presenter::Present(JitterBuffer* buffer, int64_t audio_position_ms, bool streaming,
                         PresentResult* result) {
  *result = PresentResult{};
  std::vector<EncodedFrame> due = buffer->TakeDue(audio_position_ms, mode_ == FrameMode::kDelta);
  if (!due.empty()) {
    if (mode_ == FrameMode::kDelta) {
      // Each delta is relative to the one before it, so every due frame is drawn in order.
      for (const EncodedFrame& frame : due) {
        Error error = Draw(frame, &result->dirty);
        if (!error.ok()) return error;
      }
      result->frames_applied = static_cast<int32_t>(due.size());
    } else {
      // Whole frames: only the newest due frame matters; older ones are late and skipped.
      Error error = Draw(due.back(), &result->dirty);
      if (!error.ok()) return error;
      result->frames_applied = 1;
      result->frames_dropped = static_cast<int32_t>(due.size() - 1);
    }
    shown_index_ = due.back().index;
    shown_pts_ms_ = due.back().pts_ms;
    shown_duration_ms_ = due.back().duration_ms;
    // The mouth follows the same clock as the pixels: the newest due frame's block wins.
    for (auto it = due.rbegin(); it != due.rend(); ++it) {
      if (it->mouth.present) {
        shown_mouth_ = std::move(it->mouth);
        break;
      }
    }
  }
  result->changed = !result->dirty.empty();
  result->frame_index = shown_index_;
  result->pts_ms = shown_pts_ms_;
  result->duration_ms = shown_duration_ms_;
  result->frames_buffered = static_cast<int32_t>(buffer->size());
  result->starved = streaming && result->frames_buffered == 0 &&
                    audio_position_ms >= buffer->newest_end_ms();
  return Error::Ok();
}

int64_t PlaybackPolicy::HeardMs(const PlaybackInput& in) {
  const bool consumed = in.audio_played_ms >= 0 && in.audio_played_ms >= in.audio_buffered_ms;
  if (!consumed) {
    drained_at_ms_ = -1;
  } else if (drained_at_ms_ < 0) {
    drained_at_ms_ = in.now_ms;
  }
  if (in.audio_played_ms < 0) return -1;
  // Audio still in the mixer's and device's buffers has been consumed but not heard yet.
  const int64_t latency = settings_.output_latency_ms;
  const int64_t tail = drained_at_ms_ < 0 ? 0 : std::min(latency, in.now_ms - drained_at_ms_);
  const int64_t heard = in.audio_played_ms - latency + tail;
  return heard < 0 ? -1 : heard;
}

PlaybackAdvice PlaybackPolicy::Advise(const PlaybackInput& in, int32_t frames_buffered) {
  PlaybackAdvice advice;
  advice.heard_ms = HeardMs(in);
  // Start once video covers the preroll and the player holds as much audio (so neither waits on
  // the other right away), or once nothing more will arrive (a line shorter than the preroll).
  const bool video_ahead = in.newest_frame_end_ms >= settings_.preroll_ms;
  const bool audio_ahead = in.audio_buffered_ms >= settings_.preroll_ms;
  if (!started_ && (in.stream_over || (video_ahead && audio_ahead))) started_ = true;
  advice.start_playback = started_;
  // Over when every frame has arrived and been shown, and output_latency_ms has passed since the
  // player consumed its last audio, so the last syllable is heard, not clipped.
  advice.finished = started_ && in.stream_over && frames_buffered == 0 && drained_at_ms_ >= 0 &&
                    in.now_ms - drained_at_ms_ >= settings_.output_latency_ms;
  return advice;
}

}  // namespace avl
