// The mouth block: checked against SessionStarted's names, clamped for rigs, the rest pose found
// by name, and presented on the same audio clock as the pixels (also with no pixels at all).
#include "mouth.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "presenter.h"

namespace avl {
namespace {

MouthLayout Layout() {
  MouthLayout layout;
  // `sil` deliberately not first: the rest pose must be found by name, not position.
  layout.visemes = {"PP", "aa", "sil"};
  layout.blendshapes = {"mouthClose", "jawOpen"};
  return layout;
}

TEST(Mouth, ABlockMustCarryEveryNamedCurveAndWeightsAreClampedForTheRig) {
  const MouthLayout layout = Layout();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float visemes[] = {0.25f, 1.5f, nan};
  const float blend[] = {-0.5f, 0.75f};
  MouthBlock block;
  ASSERT_TRUE(MakeMouthBlock(layout, 40, visemes, 3, blend, 2, &block).ok());
  EXPECT_TRUE(block.present);
  EXPECT_EQ(block.pts_ms, 40);
  EXPECT_EQ(block.visemes, (std::vector<float>{0.25f, 1.0f, 0.0f}));
  EXPECT_EQ(block.blendshapes, (std::vector<float>{0.0f, 0.75f}));

  Error short_block = MakeMouthBlock(layout, 40, visemes, 2, blend, 2, &block);
  EXPECT_EQ(short_block.code, AVL_ERR_PROTOCOL);
  EXPECT_NE(short_block.message.find("SessionStarted names 3 and 2"), std::string::npos)
      << short_block.message;

  ASSERT_TRUE(MakeMouthBlock(layout, 40, nullptr, 0, nullptr, 0, &block).ok());
  EXPECT_FALSE(block.present) << "no arrays: a server that sends no motion";
}

TEST(Mouth, RestPoseIsSilByNameAndCopiesZeroWhatTheServerDoesNotSend) {
  const MouthBlock rest = Layout().Rest();
  EXPECT_FALSE(rest.present);
  EXPECT_EQ(rest.visemes, (std::vector<float>{0.0f, 0.0f, 1.0f}));
  EXPECT_EQ(rest.blendshapes, (std::vector<float>{0.0f, 0.0f}));

  float dst[4] = {9, 9, 9, 9};
  CopyWeights({0.5f, 0.25f}, dst, 4);
  EXPECT_EQ(dst[0], 0.5f);
  EXPECT_EQ(dst[1], 0.25f);
  EXPECT_EQ(dst[2], 0.0f);
  EXPECT_EQ(dst[3], 0.0f);
  dst[1] = 9;
  CopyWeights({0.75f, 0.25f}, dst, 1);
  EXPECT_EQ(dst[0], 0.75f);
  EXPECT_EQ(dst[1], 9.0f) << "untouched past n";
  CopyWeights({0.5f}, nullptr, 0);  // no array: nothing to do
}

EncodedFrame MotionFrame(int64_t index, float open) {
  EncodedFrame f;
  f.index = index;
  f.pts_ms = index * 40;
  f.duration_ms = 40;
  const float visemes[] = {0.0f, open, 1.0f - open};
  const float blend[] = {0.0f, open};
  EXPECT_TRUE(MakeMouthBlock(Layout(), f.pts_ms, visemes, 3, blend, 2, &f.mouth).ok());
  return f;
}

TEST(Mouth, AMotionOnlySessionIsPresentedOnTheAudioClockWithoutPixels) {
  Presenter presenter(0, 0, WireFormat::kRgba8, FrameMode::kFull);
  JitterBuffer buffer;
  for (int k = 0; k < 5; ++k) ASSERT_TRUE(buffer.Push(MotionFrame(k, 0.1f * static_cast<float>(k))));
  PresentResult r;
  ASSERT_TRUE(presenter.Present(&buffer, -1, true, &r).ok());
  EXPECT_FALSE(presenter.shown_mouth().present) << "before the first frame: nothing shown";
  // 100 ms: frames 0, 1 and 2 (pts 0, 40, 80) are due; the newest one's mouth is shown.
  ASSERT_TRUE(presenter.Present(&buffer, 100, true, &r).ok());
  EXPECT_FALSE(r.changed) << "no pixels, nothing drawn";
  EXPECT_EQ(r.frame_index, 2);
  EXPECT_EQ(r.frames_dropped, 2);
  EXPECT_EQ(presenter.shown_mouth().pts_ms, 80);
  EXPECT_FLOAT_EQ(presenter.shown_mouth().blendshapes[1], 0.2f);
  // The clock standing still keeps the same mouth; moving on shows the next.
  ASSERT_TRUE(presenter.Present(&buffer, 119, true, &r).ok());
  EXPECT_EQ(presenter.shown_mouth().pts_ms, 80);
  ASSERT_TRUE(presenter.Present(&buffer, 160, true, &r).ok());
  EXPECT_EQ(presenter.shown_mouth().pts_ms, 160);
  EXPECT_FLOAT_EQ(presenter.shown_mouth().visemes[1], 0.4f);
  EXPECT_EQ(r.frames_buffered, 0);
}

}  // namespace
}  // namespace avl
