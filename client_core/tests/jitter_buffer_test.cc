#include "jitter_buffer.h"

#include <gtest/gtest.h>

namespace avl {
namespace {

EncodedFrame At(int64_t index, int fps = 25) {
  EncodedFrame f;
  f.index = index;
  f.pts_ms = (index * 1000 + fps / 2) / fps;
  f.duration_ms = ((index + 1) * 1000 + fps / 2) / fps - f.pts_ms;
  f.pixels = std::to_string(index);
  return f;
}

std::vector<int64_t> Indices(const std::vector<EncodedFrame>& frames) {
  std::vector<int64_t> out;
  for (const auto& f : frames) out.push_back(f.index);
  return out;
}

TEST(JitterBuffer, OrdersByPresentationTimeWhateverTheArrivalOrder) {
  JitterBuffer buffer;
  for (int64_t i : {3, 0, 2, 1, 5, 4}) ASSERT_TRUE(buffer.Push(At(i)));
  EXPECT_EQ(buffer.size(), 6u);
  EXPECT_EQ(buffer.newest_end_ms(), 240);  // frame 5 ends at 6 * 40 ms
  // 85 ms lies inside frame 2 [80, 120): frames 0..2 are due, in order.
  EXPECT_EQ(Indices(buffer.TakeDue(85, false)), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(Indices(buffer.TakeDue(85, false)), std::vector<int64_t>{});
  EXPECT_EQ(Indices(buffer.TakeDue(1000, false)), (std::vector<int64_t>{3, 4, 5}));
  EXPECT_EQ(buffer.size(), 0u);
}

TEST(JitterBuffer, NothingIsDueBeforeTheFirstFrame) {
  JitterBuffer buffer;
  EXPECT_EQ(buffer.newest_end_ms(), -1);
  buffer.Push(At(0));
  EXPECT_TRUE(buffer.TakeDue(-1, false).empty());
  EXPECT_EQ(Indices(buffer.TakeDue(0, false)), std::vector<int64_t>{0});
}

TEST(JitterBuffer, RejectsDuplicatesAndFramesOlderThanOneAlreadyTaken) {
  JitterBuffer buffer;
  EXPECT_TRUE(buffer.Push(At(0)));
  EXPECT_FALSE(buffer.Push(At(0)));
  EXPECT_TRUE(buffer.Push(At(2)));
  EXPECT_EQ(Indices(buffer.TakeDue(100, false)), (std::vector<int64_t>{0, 2}));
  EXPECT_FALSE(buffer.Push(At(1)));  // late: frame 2 is already on screen
  EXPECT_TRUE(buffer.Push(At(3)));
}

TEST(JitterBuffer, ContiguousModeWaitsAtAGapInsteadOfSkippingADelta) {
  JitterBuffer buffer;
  for (int64_t i : {0, 1, 3, 4}) buffer.Push(At(i));
  EXPECT_EQ(Indices(buffer.TakeDue(1000, true)), (std::vector<int64_t>{0, 1}));
  EXPECT_TRUE(buffer.TakeDue(1000, true).empty());
  buffer.Push(At(2));
  EXPECT_EQ(Indices(buffer.TakeDue(1000, true)), (std::vector<int64_t>{2, 3, 4}));
}

}  // namespace
}  // namespace avl
