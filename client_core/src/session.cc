#include "session.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

namespace avl {
namespace {

namespace pb = avatarlab::v1;
using Clock = std::chrono::steady_clock;

// Large pushes are split so no message nears the server's size limit; a multiple of 8 bytes
// keeps every piece whole samples for any encoding and channel count.
constexpr size_t kMaxChunkBytes = 64 * 1024;
constexpr size_t kMaxQueuedEvents = 4096;
constexpr int32_t kMaxSurfaceSide = 4096;
// A motion-only session asks the server for frames in batches (max_frames_per_message): its frames
// become ready in runs (~6 per 200 ms of audio at 30 fps), and the server's cost per message, not
// the mouth model, bounds how many such sessions it holds. Batches are unpacked into the jitter
// buffer frame by frame, so nothing above the stream sees them. Image sessions keep one frame a
// message (their frames carry pixels, and come one at a time anyway).
constexpr int32_t kMotionFramesPerMessage = 8;

Error Invalid(const std::string& message) { return MakeError(AVL_ERR_INVALID_ARGUMENT, message); }

Error CheckRange(const char* name, int64_t value, int64_t lo, int64_t hi) {
  if (value != 0 && (value < lo || value > hi)) {
    return Invalid(std::string("settings.") + name + " must be 0 (default) or " +
                   std::to_string(lo) + ".." + std::to_string(hi) + ", got " +
                   std::to_string(value));
  }
  return Error::Ok();
}

void FillVideo(const avl_session_settings& s, pb::VideoOptions* video) {
  video->set_fps(s.fps);
  video->set_width_px(s.width_px);
  video->set_height_px(s.height_px);
  video->set_pixel_format(static_cast<pb::PixelFormat>(s.wire_format));
  video->set_jpeg_quality(s.jpeg_quality);
  video->set_frame_mode(static_cast<pb::FrameMode>(s.frame_mode));
}

void FillGeneration(const avl_session_settings& s, pb::GenerationOptions* generation) {
  if (s.has_seed != 0) generation->set_seed(s.seed);
  generation->set_sampler_steps(s.sampler_steps);
  generation->set_guidance_scale(s.guidance_scale);
}

EncodedFrame ToEncoded(const pb::VideoFrame& frame) {
  EncodedFrame out;
  out.index = frame.index();
  out.pts_ms = frame.pts_ms();
  out.duration_ms = frame.duration_ms();
  out.rect = Rect{frame.rect().x(), frame.rect().y(), frame.rect().width(), frame.rect().height()};
  out.pixels = frame.pixels();
  return out;
}

}  // namespace

Error BuildSessionRequest(SessionKind kind, const std::string& avatar_id, const std::string& text,
                          const std::string& voice_id, const avl_session_settings& s,
                          SessionRequest* request) {
  if (avatar_id.empty()) return Invalid("avatar_id is empty; pass an id from avl_avatar_id");
  const Error checks[] = {
      CheckRange("fps", s.fps, 1, 60),
      CheckRange("width_px", s.width_px, 16, 1024),
      CheckRange("height_px", s.height_px, 16, 1024),
      CheckRange("wire_format", s.wire_format, AVL_WIRE_RGBA8, AVL_WIRE_JPEG),
      CheckRange("jpeg_quality", s.jpeg_quality, 1, 100),
      CheckRange("frame_mode", s.frame_mode, AVL_FRAME_MODE_FULL, AVL_FRAME_MODE_DELTA),
      CheckRange("sampler_steps", s.sampler_steps, 1, 50),
      CheckRange("sample_rate_hz", s.sample_rate_hz, 8000, 192000),
      CheckRange("motion_only", s.motion_only, 1, 1),
  };
  for (const Error& e : checks) {
    if (!e.ok()) return e;
  }
  if (!(s.guidance_scale >= 0.0f && s.guidance_scale <= 10.0f)) {
    return Invalid("settings.guidance_scale must be 0 (default) to 10, got " +
                   std::to_string(s.guidance_scale));
  }
  request->kind = kind;
  if (kind == SessionKind::kAnimate) {
    if (s.audio_encoding != AVL_AUDIO_PCM_S16LE && s.audio_encoding != AVL_AUDIO_PCM_F32LE) {
      return Invalid("settings.audio_encoding must be AVL_AUDIO_PCM_S16LE (1) or "
                     "AVL_AUDIO_PCM_F32LE (2) for Animate, got " +
                     std::to_string(s.audio_encoding));
    }
    if (s.sample_rate_hz == 0) return Invalid("settings.sample_rate_hz is required for Animate");
    if (s.channels < 0 || s.channels > 2) {
      return Invalid("settings.channels must be 0 (=1), 1 or 2, got " +
                     std::to_string(s.channels));
    }
    pb::AnimateConfig& config = request->animate;
    config.set_avatar_id(avatar_id);
    config.mutable_audio_format()->set_encoding(static_cast<pb::AudioEncoding>(s.audio_encoding));
    config.mutable_audio_format()->set_sample_rate_hz(s.sample_rate_hz);
    config.mutable_audio_format()->set_channels(s.channels);
    FillVideo(s, config.mutable_video());
    FillGeneration(s, config.mutable_generation());
    config.set_motion_only(s.motion_only != 0);
    if (s.motion_only != 0) config.set_max_frames_per_message(kMotionFramesPerMessage);
  } else {
    if (text.empty()) return Invalid("text is empty; Speak needs a line to say");
    pb::SpeakRequest& speak = request->speak;
    speak.set_avatar_id(avatar_id);
    speak.set_text(text);
    speak.set_voice_id(voice_id);
    speak.set_audio_sample_rate_hz(s.sample_rate_hz);
    FillVideo(s, speak.mutable_video());
    FillGeneration(s, speak.mutable_generation());
    speak.set_motion_only(s.motion_only != 0);
    if (s.motion_only != 0) speak.set_max_frames_per_message(kMotionFramesPerMessage);
  }
  return Error::Ok();
}

Session::Session(std::shared_ptr<Connection> connection, SessionRequest request,
                 avl_event_fn event_fn, void* user, avl_session* handle)
    : connection_(std::move(connection)),
      request_(std::move(request)),
      event_fn_(event_fn),
      user_(user),
      handle_(handle) {}

Session::~Session() { Shutdown(); }

void Session::Start() {
  worker_ = std::thread([self = shared_from_this()] { self->Run(); });
}

void Session::Shutdown() {
  Cancel();
  if (!worker_.joinable()) return;
  if (worker_.get_id() == std::this_thread::get_id()) {
    // Released from its own callback (documented as not allowed): avoid self-join deadlock.
    std::lock_guard<std::mutex> lock(mutex_);
    handle_ = nullptr;
    worker_.detach();
    return;
  }
  worker_.join();
  std::lock_guard<std::mutex> lock(mutex_);
  handle_ = nullptr;
}

bool Session::terminal_locked() const {
  return state_ == AVL_SESSION_ENDED || state_ == AVL_SESSION_FAILED ||
         state_ == AVL_SESSION_CANCELLED;
}

// ------------------------------------------------------------------ caller-facing controls

Error Session::PushAudio(const void* data, size_t size) {
  if (request_.kind != SessionKind::kAnimate) {
    return MakeError(AVL_ERR_BAD_STATE, "push_audio: a Speak session takes no audio");
  }
  std::lock_guard<std::mutex> lock(mutex_);
  if (end_requested_) return MakeError(AVL_ERR_BAD_STATE, "push_audio after end_audio");
  if (terminal_locked() || cancel_requested_) {
    return MakeError(AVL_ERR_BAD_STATE, "push_audio: the session is over (see avl_session_error)");
  }
  const auto* bytes = static_cast<const char*>(data);
  for (size_t offset = 0; offset < size; offset += kMaxChunkBytes) {
    audio_queue_.emplace_back(bytes + offset, std::min(kMaxChunkBytes, size - offset));
  }
  cv_.notify_all();
  return Error::Ok();
}

Error Session::EndAudio() {
  if (request_.kind != SessionKind::kAnimate) {
    return MakeError(AVL_ERR_BAD_STATE, "end_audio: a Speak session takes no audio");
  }
  std::lock_guard<std::mutex> lock(mutex_);
  if (terminal_locked()) {
    return MakeError(AVL_ERR_BAD_STATE, "end_audio: the session is over");
  }
  end_requested_ = true;
  cv_.notify_all();
  return Error::Ok();
}

void Session::Cancel() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (finished_ || cancel_requested_) return;
  cancel_requested_ = true;
  if (live_context_ != nullptr) live_context_->TryCancel();
  cv_.notify_all();
}

void Session::Abort(Error error) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (finished_ || cancel_requested_) return;
  abort_error_ = std::move(error);
  cancel_requested_ = true;
  if (live_context_ != nullptr) live_context_->TryCancel();
  cv_.notify_all();
}

int32_t Session::state() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return state_;
}

Error Session::Wait(int32_t timeout_ms) {
  std::unique_lock<std::mutex> lock(mutex_);
  auto done = [this] { return finished_; };
  if (timeout_ms < 0) {
    cv_.wait(lock, done);
  } else if (!cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), done)) {
    return MakeError(AVL_ERR_DEADLINE_EXCEEDED,
                     "session still running after " + std::to_string(timeout_ms) + " ms");
  }
  return error_;
}

bool Session::PollEvent(avl_event* event) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (events_.empty()) return false;
  *event = events_.front();
  events_.pop_front();
  return true;
}

Error Session::error() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return error_;
}

Error Session::Info(avl_session_info* info) const {
  std::lock_guard<std::mutex> lock(mutex_);
  *info = info_;
  info->state = state_;
  info->frames_received = frames_received_;
  if (!started_) {
    return MakeError(AVL_ERR_BAD_STATE, "no SessionStarted yet (wait for AVL_EVENT_STARTED)");
  }
  return Error::Ok();
}

std::string Session::id() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return session_id_;
}

Error Session::Stats(avl_session_stats* stats) const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!have_stats_) {
    return MakeError(AVL_ERR_BAD_STATE, "no SessionEnded yet (wait for AVL_EVENT_ENDED)");
  }
  *stats = stats_;
  return Error::Ok();
}

// ------------------------------------------------------------------ presentation

Error Session::Present(int64_t audio_position_ms, PresentResult* result) {
  Presenter* presenter = nullptr;
  bool streaming = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    presenter = presenter_.get();
    streaming = state_ == AVL_SESSION_STREAMING;
  }
  if (presenter == nullptr) {
    return MakeError(AVL_ERR_BAD_STATE, "present before AVL_EVENT_STARTED: no surface yet");
  }
  Error error = presenter->Present(&jitter_, audio_position_ms, streaming, result);
  if (!error.ok()) {
    connection_->log().Log(AVL_LOG_ERROR, error.message);
    Abort(error);
    return error;
  }
  const MouthBlock& shown = presenter->shown_mouth();
  if (shown.present) {
    std::lock_guard<std::mutex> lock(mouth_mutex_);
    if (presented_mouth_.pts_ms != shown.pts_ms || !presented_mouth_.present) presented_mouth_ = shown;
  }
  return error;
}

Error Session::SetPlayback(const avl_playback_settings* settings) {
  PlaybackSettings resolved;
  if (settings != nullptr) {
    if (settings->preroll_ms < 0 || settings->output_latency_ms < 0) {
      return Invalid("playback.preroll_ms and output_latency_ms must be >= 0, got " +
                     std::to_string(settings->preroll_ms) + " and " +
                     std::to_string(settings->output_latency_ms));
    }
    if (settings->preroll_ms > 0) resolved.preroll_ms = settings->preroll_ms;
    resolved.output_latency_ms = settings->output_latency_ms;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  playback_settings_ = resolved;
  return Error::Ok();
}

Error Session::PresentPlayback(const avl_playback_clock& clock, PlaybackAdvice* advice,
                               PresentResult* result) {
  PlaybackInput in;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    playback_.Configure(playback_settings_);
    // Read before presenting: once the stream is over, every frame is in the jitter buffer.
    in.stream_over = terminal_locked();
  }
  in.audio_buffered_ms = clock.audio_buffered_ms;
  in.audio_played_ms = clock.audio_played_ms;
  in.newest_frame_end_ms = jitter_.newest_end_ms();
  in.now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  Clock::now().time_since_epoch()).count();
  Error error = Present(playback_.HeardMs(in), result);
  if (!error.ok()) return error;
  *advice = playback_.Advise(in, result->frames_buffered);
  return Error::Ok();
}

const uint8_t* Session::SurfacePixels() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return presenter_ && !motion_only_ ? presenter_->surface().pixels() : nullptr;
}

Error Session::CopySurface(const Rect& rect, uint8_t* dst, int32_t dst_stride,
                           size_t dst_size) const {
  const Presenter* presenter = nullptr;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    presenter = presenter_.get();
  }
  if (presenter == nullptr) return MakeError(AVL_ERR_BAD_STATE, "copy_surface before STARTED");
  const Surface& surface = presenter->surface();
  if (!surface.Contains(rect)) {
    return MakeError(AVL_ERR_INVALID_ARGUMENT,
                     "rect (" + std::to_string(rect.x) + "," + std::to_string(rect.y) + " " +
                         std::to_string(rect.width) + "x" + std::to_string(rect.height) +
                         ") is not inside the " + std::to_string(surface.width()) + "x" +
                         std::to_string(surface.height()) + " surface");
  }
  if (rect.empty()) return Error::Ok();
  if (dst_stride < rect.width * 4) {
    return MakeError(AVL_ERR_INVALID_ARGUMENT, "dst_stride " + std::to_string(dst_stride) +
                                                   " < width * 4 = " +
                                                   std::to_string(rect.width * 4));
  }
  const size_t needed = static_cast<size_t>(rect.height - 1) * dst_stride + rect.width * 4;
  if (dst_size < needed) {
    return MakeError(AVL_ERR_BUFFER_TOO_SMALL, "dst_size " + std::to_string(dst_size) +
                                                   " < needed " + std::to_string(needed));
  }
  surface.CopyOut(rect, dst, dst_stride);
  return Error::Ok();
}

int32_t Session::ReadAudio(int16_t* dst, int32_t max_samples) {
  std::lock_guard<std::mutex> lock(audio_out_mutex_);
  const int32_t n =
      static_cast<int32_t>(std::min<size_t>(audio_out_.size(), static_cast<size_t>(max_samples)));
  std::copy(audio_out_.begin(), audio_out_.begin() + n, dst);
  audio_out_.erase(audio_out_.begin(), audio_out_.begin() + n);
  return n;
}

// ------------------------------------------------------------------ mouth motion

int32_t Session::MouthCount(int32_t set) const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!started_) return 0;
  if (set == AVL_MOUTH_VISEMES) return static_cast<int32_t>(mouth_layout_.visemes.size());
  if (set == AVL_MOUTH_BLENDSHAPES) return static_cast<int32_t>(mouth_layout_.blendshapes.size());
  return 0;
}

const char* Session::MouthName(int32_t set, int32_t index) const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!started_ || index < 0) return nullptr;
  const std::vector<std::string>* names = set == AVL_MOUTH_VISEMES       ? &mouth_layout_.visemes
                                          : set == AVL_MOUTH_BLENDSHAPES ? &mouth_layout_.blendshapes
                                                                          : nullptr;
  if (names == nullptr || static_cast<size_t>(index) >= names->size()) return nullptr;
  return (*names)[static_cast<size_t>(index)].c_str();
}

Error Session::Mouth(bool latest, MouthBlock* out) const {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!started_) {
      return MakeError(AVL_ERR_BAD_STATE, "no SessionStarted yet (wait for AVL_EVENT_STARTED)");
    }
  }
  {
    std::lock_guard<std::mutex> lock(mouth_mutex_);
    *out = latest ? latest_mouth_ : presented_mouth_;
  }
  if (!out->present) *out = mouth_layout_.Rest();
  return Error::Ok();
}

// ------------------------------------------------------------------ worker

void Session::Run() {
  const ClientConfig& config = connection_->config();
  int32_t backoff_ms = config.retry_initial_backoff_ms;
  for (int32_t attempt = 1;; ++attempt) {
    Error error = Attempt();
    bool cancelled = false, started = false;
    Error abort_error;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      cancelled = cancel_requested_;
      started = started_;
      abort_error = abort_error_;
    }
    if (!abort_error.ok()) return Finish(AVL_SESSION_FAILED, abort_error);
    if (cancelled) {
      return Finish(AVL_SESSION_CANCELLED,
                    MakeError(AVL_ERR_CANCELLED, "session cancelled by avl_session_cancel"));
    }
    if (error.ok()) return Finish(AVL_SESSION_ENDED, Error::Ok());
    // Only a session the server never started can be retried: after SessionStarted the
    // server-side session (and the audio it consumed) is gone with the connection.
    if (started || error.code != AVL_ERR_UNAVAILABLE) return Finish(AVL_SESSION_FAILED, error);
    if (attempt >= config.retry_max_attempts) {
      error.message += " (gave up after " + std::to_string(attempt) + " attempt" +
                       (attempt == 1 ? "" : "s") + ")";
      return Finish(AVL_SESSION_FAILED, error);
    }
    connection_->log().Log(AVL_LOG_WARNING, "attempt " + std::to_string(attempt) + " failed: " +
                                                error.message + "; retrying in " +
                                                std::to_string(backoff_ms) + " ms");
    Emit(avl_event{AVL_EVENT_RETRYING, error.code, attempt, backoff_ms});
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait_for(lock, std::chrono::milliseconds(backoff_ms), [this] { return cancel_requested_; });
      // Audio sent in the failed attempt goes out again, first and in order.
      audio_queue_.insert(audio_queue_.begin(), std::make_move_iterator(resent_.begin()),
                          std::make_move_iterator(resent_.end()));
      resent_.clear();
      stream_done_ = false;
    }
    backoff_ms = std::min(backoff_ms * 2, config.retry_max_backoff_ms);
  }
}

Error Session::Attempt() {
  Error connected = connection_->WaitConnected(connection_->config().connect_timeout_ms, [this] {
    std::lock_guard<std::mutex> lock(mutex_);
    return cancel_requested_;
  });
  if (!connected.ok()) return connected;
  // The whole-stream deadline also bounds a session whose server hangs while the connection
  // still answers keepalive pings.
  std::unique_ptr<grpc::ClientContext> context =
      connection_->NewContext(connection_->config().stream_deadline_ms);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (cancel_requested_) return MakeError(AVL_ERR_CANCELLED, "cancelled");
    live_context_ = context.get();
  }
  Error error = request_.kind == SessionKind::kAnimate ? RunAnimate(context.get())
                                                       : RunSpeak(context.get());
  std::lock_guard<std::mutex> lock(mutex_);
  live_context_ = nullptr;
  return error;
}

Error Session::RunAnimate(grpc::ClientContext* context) {
  auto stream = connection_->stub().Animate(context);
  std::thread writer([this, &stream] { WriteAudio(stream.get()); });
  pb::AnimateResponse response;
  Error handled;
  bool ended = false;
  while (handled.ok() && stream->Read(&response)) {
    switch (response.message_case()) {
      case pb::AnimateResponse::kStarted: handled = OnStarted(response.started(), 0); break;
      case pb::AnimateResponse::kFrame: handled = OnFrame(response.frame()); break;
      case pb::AnimateResponse::kFrames: handled = OnFrames(response.frames()); break;
      case pb::AnimateResponse::kEnded:
        OnEnded(response.ended());
        ended = true;
        break;
      default:
        handled = MakeError(AVL_ERR_PROTOCOL, "Animate: empty or unknown response message");
    }
  }
  if (!handled.ok()) {
    context->TryCancel();
    while (stream->Read(&response)) {
    }
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stream_done_ = true;
    cv_.notify_all();
  }
  writer.join();
  return Outcome(stream->Finish(), handled, ended, "Animate");
}

void Session::WriteAudio(
    grpc::ClientReaderWriter<pb::AnimateRequest, pb::AnimateResponse>* stream) {
  pb::AnimateRequest message;
  *message.mutable_config() = request_.animate;
  if (!stream->Write(message)) return;  // the read side sees the failure and its status
  while (true) {
    std::string chunk;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [this] {
        return stream_done_ || cancel_requested_ || !audio_queue_.empty() || end_requested_;
      });
      if (stream_done_ || cancel_requested_) return;
      if (audio_queue_.empty()) break;  // end requested and everything sent
      chunk = std::move(audio_queue_.front());
      audio_queue_.pop_front();
      if (!started_) resent_.push_back(chunk);
    }
    message.Clear();
    message.mutable_audio()->set_data(std::move(chunk));
    if (!stream->Write(message)) return;
  }
  message.Clear();
  message.mutable_end_of_audio();
  if (stream->Write(message)) stream->WritesDone();
}

Error Session::RunSpeak(grpc::ClientContext* context) {
  auto stream = connection_->stub().Speak(context, request_.speak);
  pb::SpeakResponse response;
  Error handled;
  bool ended = false;
  while (handled.ok() && stream->Read(&response)) {
    switch (response.message_case()) {
      case pb::SpeakResponse::kStarted:
        handled = OnStarted(response.started().video(), response.started().audio_sample_rate_hz());
        break;
      case pb::SpeakResponse::kAudio: OnSpeech(response.audio()); break;
      case pb::SpeakResponse::kFrame: handled = OnFrame(response.frame()); break;
      case pb::SpeakResponse::kFrames: handled = OnFrames(response.frames()); break;
      case pb::SpeakResponse::kEnded:
        OnEnded(response.ended());
        ended = true;
        break;
      default: handled = MakeError(AVL_ERR_PROTOCOL, "Speak: empty or unknown response message");
    }
  }
  if (!handled.ok()) {
    context->TryCancel();
    while (stream->Read(&response)) {
    }
  }
  return Outcome(stream->Finish(), handled, ended, "Speak");
}

Error Session::Outcome(const grpc::Status& status, const Error& handled, bool ended, const char* rpc) {
  if (!handled.ok()) return handled;
  bool cancelled = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    cancelled = cancel_requested_;
  }
  if (status.ok() && !ended) {
    return MakeError(AVL_ERR_PROTOCOL, std::string(rpc) + ": stream closed without SessionEnded");
  }
  return FromGrpcStatus(status, rpc, connection_->config().target, cancelled);
}

// ------------------------------------------------------------------ stream messages

Error Session::OnStarted(const pb::SessionStarted& started, int32_t audio_rate_hz) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (started_) return MakeError(AVL_ERR_PROTOCOL, "a second SessionStarted");
  }
  // A motion-only session has no surface: whatever size it names, nothing is drawn.
  const bool motion_only = started.motion_only();
  const int32_t w = motion_only ? 0 : started.width_px(), h = motion_only ? 0 : started.height_px();
  if ((!motion_only && (w <= 0 || h <= 0)) || w > kMaxSurfaceSide || h > kMaxSurfaceSide ||
      started.fps() <= 0) {
    return MakeError(AVL_ERR_PROTOCOL, "SessionStarted has an unusable size " + std::to_string(w) +
                                           "x" + std::to_string(h) + " or fps " +
                                           std::to_string(started.fps()));
  }
  // The public enums mirror the proto's values; UNSPECIFIED means the documented default.
  const int32_t wire = started.pixel_format() == pb::PIXEL_FORMAT_UNSPECIFIED
                           ? static_cast<int32_t>(AVL_WIRE_RGBA8)
                           : static_cast<int32_t>(started.pixel_format());
  const int32_t mode = started.frame_mode() == pb::FRAME_MODE_UNSPECIFIED
                           ? static_cast<int32_t>(AVL_FRAME_MODE_FULL)
                           : static_cast<int32_t>(started.frame_mode());
  if (wire < AVL_WIRE_RGBA8 || wire > AVL_WIRE_JPEG || mode < AVL_FRAME_MODE_FULL ||
      mode > AVL_FRAME_MODE_DELTA) {
    return MakeError(AVL_ERR_PROTOCOL, "SessionStarted has unknown pixel format " +
                                           std::to_string(wire) + " or frame mode " +
                                           std::to_string(mode));
  }
  auto presenter = std::make_unique<Presenter>(w, h, static_cast<WireFormat>(wire),
                                               static_cast<FrameMode>(mode));
  if (motion_only) {
    // No pixels, no base image: frames only carry the mouth block.
  } else if (started.has_base_frame() && !started.base_frame().pixels().empty()) {
    Error error = presenter->SetBase(ToEncoded(started.base_frame()));
    if (!error.ok()) {
      error.message = "base frame: " + error.message;
      return error;
    }
  } else if (mode == AVL_FRAME_MODE_DELTA) {
    return MakeError(AVL_ERR_PROTOCOL, "FRAME_MODE_DELTA session without a base frame");
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    presenter_ = std::move(presenter);
    motion_only_ = motion_only;
    mouth_layout_.visemes.assign(started.viseme_names().begin(), started.viseme_names().end());
    mouth_layout_.blendshapes.assign(started.blendshape_names().begin(),
                                     started.blendshape_names().end());
    info_.motion_only = motion_only ? 1 : 0;
    info_.viseme_count = static_cast<int32_t>(mouth_layout_.visemes.size());
    info_.blendshape_count = static_cast<int32_t>(mouth_layout_.blendshapes.size());
    session_id_ = started.session_id();
    info_.fps = started.fps();
    info_.width_px = w;
    info_.height_px = h;
    info_.wire_format = wire;
    info_.frame_mode = mode;
    info_.lookahead_ms = started.lookahead_ms();
    info_.sampler_steps = started.sampler_steps();
    info_.guidance_scale = started.guidance_scale();
    info_.audio_sample_rate_hz = audio_rate_hz;
    started_ = true;
    resent_.clear();
    if (!cancel_requested_) state_ = AVL_SESSION_STREAMING;
  }
  connection_->log().Log(AVL_LOG_INFO, "session " + started.session_id() + " started: " +
                                           std::to_string(w) + "x" + std::to_string(h) + " @ " +
                                           std::to_string(started.fps()) + " fps" +
                                           (motion_only ? " (motion only)" : ""));
  Emit(avl_event{AVL_EVENT_STARTED, AVL_OK, -1, 0});
  return Error::Ok();
}

Error Session::OnFrame(const pb::VideoFrame& frame) {
  bool motion_only = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!started_) return MakeError(AVL_ERR_PROTOCOL, "a frame before SessionStarted");
    ++frames_received_;
    motion_only = motion_only_;
  }
  const int64_t index = frame.index(), pts = frame.pts_ms();
  EncodedFrame encoded = ToEncoded(frame);
  if (motion_only) {
    encoded.rect = Rect{};  // there is no surface to draw on
    encoded.pixels.clear();
  }
  // mouth_layout_ is fixed before started_ turns true, so it is read here without the lock.
  Error error = MakeMouthBlock(mouth_layout_, pts, frame.mouth().visemes().data(),
                               frame.mouth().visemes_size(), frame.mouth().blendshapes().data(),
                               frame.mouth().blendshapes_size(), &encoded.mouth);
  if (!error.ok()) {
    error.message = "frame " + std::to_string(index) + ": " + error.message;
    return error;
  }
  if (encoded.mouth.present) {
    std::lock_guard<std::mutex> lock(mouth_mutex_);
    if (!latest_mouth_.present || pts >= latest_mouth_.pts_ms) latest_mouth_ = encoded.mouth;
  }
  if (!jitter_.Push(std::move(encoded))) {
    connection_->log().Log(AVL_LOG_WARNING,
                           "dropped duplicate or stale frame " + std::to_string(index));
    return Error::Ok();
  }
  Emit(avl_event{AVL_EVENT_FRAME_READY, AVL_OK, index, pts});
  return Error::Ok();
}

Error Session::OnFrames(const pb::FrameBatch& batch) {
  for (const pb::VideoFrame& frame : batch.frames()) {
    Error error = OnFrame(frame);
    if (!error.ok()) return error;
  }
  return Error::Ok();
}

void Session::OnSpeech(const pb::SpeechAudio& audio) {
  int32_t rate = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    rate = info_.audio_sample_rate_hz;
  }
  const size_t samples = audio.pcm_s16le().size() / 2;
  {
    std::lock_guard<std::mutex> lock(audio_out_mutex_);
    if (rate > 0) {
      // Keep sample count equal to the audio clock: pad any gap the server leaves with silence.
      const int64_t first = audio.pts_ms() * rate / 1000;
      if (first > audio_out_written_) {
        audio_out_.insert(audio_out_.end(), static_cast<size_t>(first - audio_out_written_), 0);
        audio_out_written_ = first;
      }
    }
    const auto* bytes = reinterpret_cast<const uint8_t*>(audio.pcm_s16le().data());
    for (size_t i = 0; i < samples; ++i) {
      audio_out_.push_back(static_cast<int16_t>(bytes[2 * i] | (bytes[2 * i + 1] << 8)));
    }
    audio_out_written_ += static_cast<int64_t>(samples);
  }
  Emit(avl_event{AVL_EVENT_AUDIO_READY, AVL_OK, -1, audio.pts_ms()});
}

void Session::OnEnded(const pb::SessionEnded& ended) {
  std::lock_guard<std::mutex> lock(mutex_);
  have_stats_ = true;
  stats_.frames_sent = ended.stats().frames_sent();
  stats_.audio_received_ms = ended.stats().audio_received_ms();
  stats_.bytes_sent = ended.stats().bytes_sent();
  stats_.first_frame_latency_ms = ended.stats().first_frame_latency_ms();
  stats_.mean_generate_ms = ended.stats().mean_generate_ms();
}

void Session::Finish(int32_t state, Error error) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    state_ = state;
    error_ = error;
  }
  if (error.ok()) {
    connection_->log().Log(AVL_LOG_INFO, "session ended");
    Emit(avl_event{AVL_EVENT_ENDED, AVL_OK, -1, 0});
  } else {
    connection_->log().Log(state == AVL_SESSION_CANCELLED ? AVL_LOG_INFO : AVL_LOG_ERROR,
                           error.message);
    Emit(avl_event{AVL_EVENT_ERROR, error.code, -1, 0});
  }
  std::lock_guard<std::mutex> lock(mutex_);
  finished_ = true;
  cv_.notify_all();
}

void Session::Emit(const avl_event& event) {
  avl_session* handle = nullptr;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (event_fn_ == nullptr) {
      if (events_.size() >= kMaxQueuedEvents) {
        auto droppable = std::find_if(events_.begin(), events_.end(), [](const avl_event& e) {
          return e.type == AVL_EVENT_FRAME_READY || e.type == AVL_EVENT_AUDIO_READY;
        });
        if (droppable != events_.end()) {
          events_.erase(droppable);
        } else if (event.type == AVL_EVENT_FRAME_READY || event.type == AVL_EVENT_AUDIO_READY) {
          return;
        }
      }
      events_.push_back(event);
      return;
    }
    handle = handle_;
  }
  if (handle != nullptr) event_fn_(user_, handle, &event);
}

}  // namespace avl
