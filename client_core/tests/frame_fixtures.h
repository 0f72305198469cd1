// Synthetic frame sequences for the presenter tests: whole images whose content encodes the
// frame index, and the delta stream (changed rectangle only) a server would send for them.
#pragma once

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "jitter_buffer.h"

namespace avl {
namespace testing_fixtures {

inline int64_t PtsMs(int64_t index, int fps) { return (index * 1000 + fps / 2) / fps; }

// Image k: image k-1 with one random rectangle repainted in a colour derived from k (some
// frames change nothing). Rows top to bottom, RGBA8.
class FrameSequence {
 public:
  FrameSequence(int32_t width, int32_t height, int count, uint32_t seed)
      : width_(width), height_(height) {
    std::mt19937 rng(seed);
    std::vector<uint8_t> image(static_cast<size_t>(width) * height * 4, 0);
    for (size_t i = 0; i < image.size(); ++i) image[i] = static_cast<uint8_t>(i * 7);
    base_ = image;
    for (int k = 0; k < count; ++k) {
      Rect r;
      if (rng() % 8 != 0) {  // 1 in 8 frames: nothing changes
        r.width = 1 + static_cast<int32_t>(rng() % width);
        r.height = 1 + static_cast<int32_t>(rng() % height);
        r.x = static_cast<int32_t>(rng() % (width - r.width + 1));
        r.y = static_cast<int32_t>(rng() % (height - r.height + 1));
        for (int32_t y = r.y; y < r.y + r.height; ++y) {
          for (int32_t x = r.x; x < r.x + r.width; ++x) {
            uint8_t* p = &image[(static_cast<size_t>(y) * width + x) * 4];
            p[0] = static_cast<uint8_t>(k);
            p[1] = static_cast<uint8_t>(k >> 8);
            p[2] = static_cast<uint8_t>(x * 3 + y);
            p[3] = 255;
          }
        }
      }
      changed_.push_back(r);
      images_.push_back(image);
    }
  }

  int count() const { return static_cast<int>(images_.size()); }
  const std::vector<uint8_t>& image(int k) const { return images_[static_cast<size_t>(k)]; }

  EncodedFrame Base() const { return Whole(-1, base_, 0); }

  EncodedFrame Full(int k, int fps) const { return Whole(k, images_[k], fps); }

  EncodedFrame Delta(int k, int fps) const {
    EncodedFrame f = Whole(k, images_[k], fps);
    f.rect = changed_[k];
    f.pixels.clear();
    for (int32_t y = f.rect.y; y < f.rect.y + f.rect.height; ++y) {
      const auto* row = &images_[k][(static_cast<size_t>(y) * width_ + f.rect.x) * 4];
      f.pixels.append(reinterpret_cast<const char*>(row), static_cast<size_t>(f.rect.width) * 4);
    }
    return f;
  }

 private:
  EncodedFrame Whole(int k, const std::vector<uint8_t>& image, int fps) const {
    EncodedFrame f;
    f.index = k;
    f.pts_ms = fps > 0 ? PtsMs(k, fps) : 0;
    f.duration_ms = fps > 0 ? PtsMs(k + 1, fps) - f.pts_ms : 0;
    f.rect = Rect{0, 0, width_, height_};
    f.pixels.assign(reinterpret_cast<const char*>(image.data()), image.size());
    return f;
  }

  int32_t width_, height_;
  std::vector<uint8_t> base_;
  std::vector<std::vector<uint8_t>> images_;
  std::vector<Rect> changed_;
};

inline bool SurfaceEquals(const uint8_t* pixels, const std::vector<uint8_t>& image) {
  return std::memcmp(pixels, image.data(), image.size()) == 0;
}

}  // namespace testing_fixtures
}  // namespace avl
