// The persistent RGBA8 image the engine uploads: frames (whole or delta rectangles) are drawn
// onto it in order, and the union of what changed is reported as the dirty rectangle.
#pragma once

#include <cstdint>
#include <vector>

namespace avl {

struct Rect {
  int32_t x = 0, y = 0, width = 0, height = 0;

  bool empty() const { return width <= 0 || height <= 0; }
  bool operator==(const Rect& o) const {
    return x == o.x && y == o.y && width == o.width && height == o.height;
  }
};

// Smallest rectangle holding both; an empty rectangle is the identity.
Rect Union(const Rect& a, const Rect& b);

class Surface {
 public:
  Surface(int32_t width, int32_t height);

  int32_t width() const { return width_; }
  int32_t height() const { return height_; }
  int32_t stride() const { return width_ * 4; }
  const uint8_t* pixels() const { return pixels_.data(); }
  bool Contains(const Rect& r) const;

  // Draws `rgba` (rect.width * rect.height * 4 bytes, tightly packed) at `rect`.
  // `rect` must be inside the surface (checked by the caller with Contains).
  void Blit(const Rect& rect, const uint8_t* rgba);

  // Copies `rect` out into `dst` with rows `dst_stride` bytes apart.
  void CopyOut(const Rect& rect, uint8_t* dst, int32_t dst_stride) const;

 private:
  int32_t width_;
  int32_t height_;
  std::vector<uint8_t> pixels_;  // (H, W, 4) RGBA8
};

}  // namespace avl
