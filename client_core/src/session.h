// One Animate or Speak session: the stream runs on the session's own threads (a worker that
// opens, reads and retries; for Animate also a writer that sends queued audio). Frames go into
// the jitter buffer; the engine's presentation thread pulls them with Present().
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "avatarlab/avatarlab.h"
#include "connection.h"
#include "jitter_buffer.h"
#include "mouth.h"
#include "presenter.h"
#include "status.h"

namespace avl {

enum class SessionKind { kAnimate, kSpeak };

// What is sent to open the stream; kept so a failed open can be retried unchanged.
struct SessionRequest {
  SessionKind kind = SessionKind::kAnimate;
  avatarlab::v1::AnimateConfig animate;
  avatarlab::v1::SpeakRequest speak;
};

// Builds the request from public settings; INVALID_ARGUMENT for values the proto forbids.
Error BuildSessionRequest(SessionKind kind, const std::string& avatar_id, const std::string& text,
                          const std::string& voice_id, const avl_session_settings& settings,
                          SessionRequest* request);

// Owned through shared_ptr: the worker thread holds a reference too, so a session released from
// its own callback (detached, not joined) stays alive until its worker returns.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(std::shared_ptr<Connection> connection, SessionRequest request, avl_event_fn event_fn,
          void* user, avl_session* handle);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void Start();
  // Cancels if running and joins the threads; no callback runs after this returns.
  void Shutdown();

  Error PushAudio(const void* data, size_t size);
  Error EndAudio();
  void Cancel();

  int32_t state() const;
  Error Wait(int32_t timeout_ms);
  bool PollEvent(avl_event* event);
  Error error() const;
  Error Info(avl_session_info* info) const;
  std::string id() const;
  Error Stats(avl_session_stats* stats) const;

  Error Present(int64_t audio_position_ms, PresentResult* result);
  Error SetPlayback(const avl_playback_settings* settings);
  // Presents at the heard position of `clock` and advises (presentation thread).
  Error PresentPlayback(const avl_playback_clock& clock, PlaybackAdvice* advice,
                        PresentResult* result);
  const uint8_t* SurfacePixels() const;
  Error CopySurface(const Rect& rect, uint8_t* dst, int32_t dst_stride, size_t dst_size) const;
  int32_t ReadAudio(int16_t* dst, int32_t max_samples);

  // Mouth motion (any thread). Names are fixed at SessionStarted, so the pointers stay valid.
  int32_t MouthCount(int32_t set) const;
  const char* MouthName(int32_t set, int32_t index) const;
  // The presented (or, with `latest`, newest received) block; the rest pose (absent) before one.
  // BAD_STATE before SessionStarted.
  Error Mouth(bool latest, MouthBlock* out) const;

 private:
  void Run();
  Error Attempt();
  Error RunAnimate(grpc::ClientContext* context);
  Error RunSpeak(grpc::ClientContext* context);
  void WriteAudio(grpc::ClientReaderWriter<avatarlab::v1::AnimateRequest,
                                           avatarlab::v1::AnimateResponse>* stream);
  Error OnStarted(const avatarlab::v1::SessionStarted& started, int32_t audio_rate_hz);
  // How a finished stream ended: a local handling error first, then cancel, a missing SessionEnded, or the status.
  Error Outcome(const grpc::Status& status, const Error& handled, bool ended, const char* rpc);
  Error OnFrame(const avatarlab::v1::VideoFrame& frame);
  // A FrameBatch (motion-only sessions ask for them): its frames, in order, as OnFrame each.
  Error OnFrames(const avatarlab::v1::FrameBatch& batch);
  void OnSpeech(const avatarlab::v1::SpeechAudio& audio);
  void OnEnded(const avatarlab::v1::SessionEnded& ended);
  void Finish(int32_t state, Error error);
  void Emit(const avl_event& event);
  void Abort(Error error);
  bool terminal_locked() const;

  const std::shared_ptr<Connection> connection_;
  const SessionRequest request_;
  const avl_event_fn event_fn_;
  void* const user_;

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  avl_session* handle_;  // passed to callbacks; cleared at shutdown
  std::thread worker_;
  int32_t state_ = AVL_SESSION_CONNECTING;
  bool finished_ = false;        // terminal event delivered
  bool cancel_requested_ = false;
  Error abort_error_;            // set when the client itself stops the stream (decode error)
  Error error_;
  grpc::ClientContext* live_context_ = nullptr;  // the attempt in flight, for TryCancel

  // Audio the caller pushed (Animate); `resent_` holds what the current attempt sent before
  // SessionStarted, to send again if the attempt fails and is retried.
  std::deque<std::string> audio_queue_;
  std::vector<std::string> resent_;
  bool end_requested_ = false;
  bool stream_done_ = false;  // reads finished; the writer must stop
  bool started_ = false;

  // Set once at SessionStarted under mutex_, then used by the presentation thread alone.
  std::unique_ptr<Presenter> presenter_;
  PlaybackSettings playback_settings_;  // under mutex_: set from any thread
  PlaybackPolicy playback_;             // presentation thread only
  avl_session_info info_{};
  std::string session_id_;
  bool have_stats_ = false;
  avl_session_stats stats_{};
  JitterBuffer jitter_;
  int64_t frames_received_ = 0;
  bool motion_only_ = false;
  MouthLayout mouth_layout_;  // set once at SessionStarted, before started_

  // Written by the receive thread (latest) and the presentation thread (presented), read by any.
  mutable std::mutex mouth_mutex_;
  MouthBlock presented_mouth_;
  MouthBlock latest_mouth_;

  std::deque<avl_event> events_;  // only without a callback

  // Speak audio (mono s16), padded with silence where pts jumps so sample count = audio clock.
  std::mutex audio_out_mutex_;
  std::deque<int16_t> audio_out_;
  int64_t audio_out_written_ = 0;  // samples ever queued, including padding
};

}  // namespace avl
