// The clock API: the frame on the surface is chosen by the engine's audio position, so video
// follows audio exactly whether the audio device runs fast or slow, and deltas rebuild the
// exact full frames.
#include "presenter.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>

#include "frame_fixtures.h"

namespace avl {
namespace {

using testing_fixtures::FrameSequence;
using testing_fixtures::PtsMs;
using testing_fixtures::SurfaceEquals;

constexpr int kFps = 25;

TEST(Presenter, ShowsTheBaseImageUntilTheClockReachesTheFirstFrame) {
  FrameSequence seq(8, 6, 3, 1);
  Presenter presenter(8, 6, WireFormat::kRgba8, FrameMode::kFull);
  ASSERT_TRUE(presenter.SetBase(seq.Base()).ok());
  JitterBuffer buffer;
  buffer.Push(seq.Full(0, kFps));
  PresentResult r;
  ASSERT_TRUE(presenter.Present(&buffer, -5, true, &r).ok());
  EXPECT_FALSE(r.changed);
  EXPECT_EQ(r.frame_index, -1);
  const std::string base = seq.Base().pixels;
  EXPECT_TRUE(SurfaceEquals(presenter.surface().pixels(),
                            std::vector<uint8_t>(base.begin(), base.end())));
  ASSERT_TRUE(presenter.Present(&buffer, 0, true, &r).ok());
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(r.frame_index, 0);
  EXPECT_EQ(r.dirty, (Rect{0, 0, 8, 6}));
  EXPECT_TRUE(SurfaceEquals(presenter.surface().pixels(), seq.image(0)));
}

TEST(Presenter, FullModeSkipsFramesTheClockHasPassedAndReportsThem) {
  FrameSequence seq(8, 6, 10, 2);
  Presenter presenter(8, 6, WireFormat::kRgba8, FrameMode::kFull);
  JitterBuffer buffer;
  for (int k = 0; k < 10; ++k) buffer.Push(seq.Full(k, kFps));
  PresentResult r;
  ASSERT_TRUE(presenter.Present(&buffer, PtsMs(6, kFps) + 5, true, &r).ok());
  EXPECT_EQ(r.frame_index, 6);
  EXPECT_EQ(r.frames_applied, 1);
  EXPECT_EQ(r.frames_dropped, 6);
  EXPECT_EQ(r.frames_buffered, 3);
  EXPECT_TRUE(SurfaceEquals(presenter.surface().pixels(), seq.image(6)));
}

TEST(Presenter, DeltaModeAppliesEveryDueFrameInOrderAndReportsTheUnionAsDirty) {
  FrameSequence seq(16, 12, 40, 3);
  Presenter presenter(16, 12, WireFormat::kRgba8, FrameMode::kDelta);
  ASSERT_TRUE(presenter.SetBase(seq.Base()).ok());
  JitterBuffer buffer;
  for (int k = 0; k < 40; ++k) buffer.Push(seq.Delta(k, kFps));
  PresentResult r;
  ASSERT_TRUE(presenter.Present(&buffer, PtsMs(4, kFps), true, &r).ok());
  EXPECT_EQ(r.frames_applied, 5);
  EXPECT_EQ(r.frames_dropped, 0);
  Rect expected;
  for (int k = 0; k <= 4; ++k) expected = Union(expected, seq.Delta(k, kFps).rect);
  EXPECT_EQ(r.dirty, expected);
  EXPECT_TRUE(SurfaceEquals(presenter.surface().pixels(), seq.image(4)));
  // Frame by frame from here on: the surface equals the whole frame every time.
  for (int k = 5; k < 40; ++k) {
    ASSERT_TRUE(presenter.Present(&buffer, PtsMs(k, kFps), true, &r).ok());
    EXPECT_EQ(r.frame_index, k);
    EXPECT_EQ(r.changed, !seq.Delta(k, kFps).rect.empty()) << "frame " << k;
    EXPECT_EQ(r.dirty, seq.Delta(k, kFps).rect) << "frame " << k;
    ASSERT_TRUE(SurfaceEquals(presenter.surface().pixels(), seq.image(k))) << "frame " << k;
  }
}

TEST(Presenter, RejectsRectanglesOutsideTheSurfaceAndWrongPayloadSizes) {
  FrameSequence seq(8, 6, 2, 4);
  Presenter presenter(8, 6, WireFormat::kRgba8, FrameMode::kDelta);
  EncodedFrame bad_base = seq.Base();
  bad_base.rect.width = 7;
  EXPECT_EQ(presenter.SetBase(bad_base).code, AVL_ERR_PROTOCOL);

  JitterBuffer buffer;
  EncodedFrame outside = seq.Full(0, kFps);
  outside.rect.x = 1;  // 8 wide from x=1 leaves the 8-wide surface
  buffer.Push(outside);
  PresentResult r;
  Error e = presenter.Present(&buffer, 1000, true, &r);
  EXPECT_EQ(e.code, AVL_ERR_PROTOCOL);
  EXPECT_NE(e.message.find("leaves the surface"), std::string::npos) << e.message;

  EncodedFrame short_payload = seq.Full(1, kFps);
  short_payload.pixels.resize(10);
  buffer.Push(short_payload);
  e = presenter.Present(&buffer, 1000, true, &r);
  EXPECT_EQ(e.code, AVL_ERR_PROTOCOL);
  EXPECT_NE(e.message.find("expected 192"), std::string::npos) << e.message;
}

TEST(Presenter, ReportsStarvationOnlyWhileStreamingAndPastTheNewestFrame) {
  FrameSequence seq(4, 4, 2, 5);
  Presenter presenter(4, 4, WireFormat::kRgba8, FrameMode::kFull);
  JitterBuffer buffer;
  buffer.Push(seq.Full(0, kFps));
  PresentResult r;
  ASSERT_TRUE(presenter.Present(&buffer, 10, true, &r).ok());
  EXPECT_FALSE(r.starved);  // frame 0 covers [0, 40)
  ASSERT_TRUE(presenter.Present(&buffer, 45, true, &r).ok());
  EXPECT_TRUE(r.starved);
  ASSERT_TRUE(presenter.Present(&buffer, 45, false, &r).ok());
  EXPECT_FALSE(r.starved);  // session over: nothing more is coming, nothing to wait for
}

// ------------------------------------------------------------------ drift under a real clock

struct SimResult {
  int64_t presents = 0;
  int64_t exact = 0;              // frame for the clock had arrived and was on the surface
  int64_t waiting = 0;            // frame for the clock had not arrived yet
  int64_t wrong = 0;              // frame for the clock had arrived but something else shown
  int64_t future = 0;             // a frame later than the clock was shown
  int64_t applied = 0, dropped = 0;
  int64_t waiting_outside_stalls = 0;
  int64_t naive_error_frames = 0; // a wall-clock player's error at the end
  int64_t last_shown = -1;
};

// A 60 s session: audio is pushed as the device plays it (rate `rate` of nominal); the server
// delivers frame k once its audio plus the lookahead has arrived, with random network/compute
// jitter and two long stalls. The game loop presents at 60 Hz with the device's position.
SimResult Simulate(FrameMode mode, double rate, uint32_t seed) {
  constexpr int32_t kW = 24, kH = 16;
  constexpr int kFrames = 60 * kFps;
  constexpr double kLookaheadMs = 120, kStartDelayMs = 400, kTickMs = 1000.0 / 60;
  const double stalls[][2] = {{10000, 10700}, {40000, 41200}};
  FrameSequence seq(kW, kH, kFrames, seed);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> jitter(0, 150);

  std::vector<double> arrival(kFrames);
  for (int k = 0; k < kFrames; ++k) {
    double t = (PtsMs(k + 1, kFps) + kLookaheadMs) / rate + jitter(rng);
    for (const auto& s : stalls) {
      if (t >= s[0] && t < s[1]) t = s[1];
    }
    arrival[k] = k == 0 ? t : std::max(arrival[k - 1], t);
  }

  Presenter presenter(kW, kH, WireFormat::kRgba8, mode);
  EXPECT_TRUE(presenter.SetBase(seq.Base()).ok());
  JitterBuffer buffer;
  SimResult out;
  int next = 0;
  for (double t = 0;; t += kTickMs) {
    while (next < kFrames && arrival[next] <= t) {
      buffer.Push(mode == FrameMode::kDelta ? seq.Delta(next, kFps) : seq.Full(next, kFps));
      ++next;
    }
    const auto position = static_cast<int64_t>(std::floor((t - kStartDelayMs) * rate));
    PresentResult r;
    Error e = presenter.Present(&buffer, position, next < kFrames, &r);
    EXPECT_TRUE(e.ok()) << e.message;
    ++out.presents;
    out.applied += r.frames_applied;
    out.dropped += r.frames_dropped;
    out.last_shown = r.frame_index;
    const int64_t want = position < 0 ? -1 : std::min<int64_t>(position * kFps / 1000, kFrames - 1);
    if (r.frame_index > want) ++out.future;
    if (want < 0) continue;
    if (arrival[want] > t) {
      ++out.waiting;
      bool in_stall = false;
      for (const auto& s : stalls) in_stall |= t >= s[0] && t < s[1] + 600;
      if (!in_stall) ++out.waiting_outside_stalls;
    } else if (r.frame_index == want && SurfaceEquals(presenter.surface().pixels(),
                                                      seq.image(static_cast<int>(want)))) {
      ++out.exact;
    } else {
      ++out.wrong;
    }
    if (position >= PtsMs(kFrames, kFps)) {
      const auto naive = static_cast<int64_t>((t - kStartDelayMs) * kFps / 1000);
      out.naive_error_frames = naive - want;
      break;
    }
  }
  return out;
}

class ClockDrift : public ::testing::TestWithParam<std::tuple<FrameMode, double>> {};

TEST_P(ClockDrift, VideoFollowsTheAudioClockWithoutDrift) {
  const auto [mode, rate] = GetParam();
  SimResult r = Simulate(mode, rate, 42);
  std::printf("[ drift ] mode=%s rate=%.2f presents=%lld exact=%lld waiting=%lld (outside stalls "
              "%lld) dropped=%lld; a wall-clock player would be off by %lld frames after 60 s\n",
              mode == FrameMode::kFull ? "FULL" : "DELTA", rate,
              static_cast<long long>(r.presents), static_cast<long long>(r.exact),
              static_cast<long long>(r.waiting), static_cast<long long>(r.waiting_outside_stalls),
              static_cast<long long>(r.dropped), static_cast<long long>(r.naive_error_frames));
  EXPECT_EQ(r.wrong, 0) << "an arrived frame for the clock was not the one on the surface";
  EXPECT_EQ(r.future, 0) << "a frame was shown before its audio";
  EXPECT_EQ(r.waiting_outside_stalls, 0) << "the 400 ms start delay should absorb normal jitter";
  EXPECT_GT(r.waiting, 0) << "the stalls should have made the video wait";
  EXPECT_EQ(r.last_shown, 60 * kFps - 1);
  if (mode == FrameMode::kDelta) {
    EXPECT_EQ(r.applied, 60 * kFps);  // every delta drawn, none skipped
    EXPECT_EQ(r.dropped, 0);
  } else {
    EXPECT_EQ(r.applied + r.dropped, 60 * kFps);
    EXPECT_GT(r.dropped, 0) << "after a stall the late frames should be skipped, not replayed";
  }
  if (rate != 1.0) EXPECT_GE(std::llabs(r.naive_error_frames), 50);  // what we avoid
}

INSTANTIATE_TEST_SUITE_P(FastAndSlowClocks, ClockDrift,
                         ::testing::Combine(::testing::Values(FrameMode::kFull, FrameMode::kDelta),
                                            ::testing::Values(0.95, 1.0, 1.05)));

// ------------------------------------------------------------------ playback policy

PlaybackInput Input(int64_t buffered, int64_t played, int64_t newest_end, bool over, int64_t now) {
  PlaybackInput in;
  in.audio_buffered_ms = buffered;
  in.audio_played_ms = played;
  in.newest_frame_end_ms = newest_end;
  in.stream_over = over;
  in.now_ms = now;
  return in;
}

TEST(PlaybackPolicy, StartsOnceVideoAndAudioCoverThePrerollAndStaysStarted) {
  PlaybackPolicy policy;
  policy.Configure(PlaybackSettings{300, 0});
  EXPECT_FALSE(policy.Advise(Input(1000, -1, 280, false, 0), 5).start_playback) << "video short";
  EXPECT_FALSE(policy.Advise(Input(200, -1, 400, false, 0), 5).start_playback) << "audio short";
  EXPECT_TRUE(policy.Advise(Input(300, -1, 320, false, 0), 5).start_playback);
  EXPECT_TRUE(policy.Advise(Input(300, 10, 0, false, 0), 5).start_playback) << "latched";
}

TEST(PlaybackPolicy, ALineShorterThanThePrerollStartsWhenTheStreamIsOver) {
  PlaybackPolicy policy;
  policy.Configure(PlaybackSettings{300, 0});
  EXPECT_FALSE(policy.Advise(Input(120, -1, 120, false, 0), 3).start_playback);
  EXPECT_TRUE(policy.Advise(Input(120, -1, 120, true, 0), 3).start_playback);
}

TEST(PlaybackPolicy, OutputLatencyShiftsTheHeardPositionBackByItsLength) {
  PlaybackPolicy policy;
  policy.Configure(PlaybackSettings{300, 120});
  EXPECT_EQ(policy.HeardMs(Input(5000, -1, 0, false, 0)), -1);
  EXPECT_EQ(policy.HeardMs(Input(5000, 100, 0, false, 0)), -1) << "nothing heard yet";
  EXPECT_EQ(policy.HeardMs(Input(5000, 1000, 0, false, 0)), 880);
  // 120 ms at 25 fps is 3 frames: frame 25 (pts 1000) shows only when 1120 ms were played.
  FrameSequence seq(8, 6, 40, 7);
  Presenter presenter(8, 6, WireFormat::kRgba8, FrameMode::kFull);
  JitterBuffer buffer;
  for (int k = 0; k < 40; ++k) buffer.Push(seq.Full(k, kFps));
  PresentResult r;
  ASSERT_TRUE(presenter.Present(&buffer, policy.HeardMs(Input(5000, 1000, 0, false, 0)), true, &r).ok());
  EXPECT_EQ(r.frame_index, 22);
  ASSERT_TRUE(presenter.Present(&buffer, policy.HeardMs(Input(5000, 1120, 0, false, 0)), true, &r).ok());
  EXPECT_EQ(r.frame_index, 25);
}

TEST(PlaybackPolicy, FinishesOnlyAfterTheLastAudioWasHeardAndEveryFrameShown) {
  PlaybackPolicy policy;
  policy.Configure(PlaybackSettings{300, 100});
  ASSERT_TRUE(policy.Advise(Input(2000, 0, 2000, true, 0), 50).start_playback);
  EXPECT_FALSE(policy.Advise(Input(2000, 1990, 2000, true, 1990), 1).finished) << "still playing";
  // The player has consumed everything at t=2000; the tail is heard over the next 100 ms and the
  // position follows the steady clock to the end of the audio.
  EXPECT_EQ(policy.HeardMs(Input(2000, 2000, 2000, true, 2000)), 1900);
  EXPECT_EQ(policy.HeardMs(Input(2000, 2000, 2000, true, 2060)), 1960);
  EXPECT_FALSE(policy.Advise(Input(2000, 2000, 2000, true, 2060), 0).finished) << "tail not heard";
  EXPECT_FALSE(policy.Advise(Input(2000, 2000, 2000, false, 2200), 0).finished) << "frames may come";
  EXPECT_FALSE(policy.Advise(Input(2000, 2000, 2000, true, 2200), 1).finished) << "a frame left";
  const PlaybackAdvice done = policy.Advise(Input(2000, 2000, 2000, true, 2200), 0);
  EXPECT_TRUE(done.finished);
  EXPECT_EQ(done.heard_ms, 2000);
  // More audio handed over (a streamed voice) means it is not over after all.
  EXPECT_FALSE(policy.Advise(Input(2400, 2000, 2400, true, 2300), 0).finished);
}

}  // namespace
}  // namespace avl
