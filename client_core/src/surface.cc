#include "surface.h"

#include <algorithm>
#include <cstring>

namespace avl {

Rect Union(const Rect& a, const Rect& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  const int32_t x0 = std::min(a.x, b.x), y0 = std::min(a.y, b.y);
  const int32_t x1 = std::max(a.x + a.width, b.x + b.width);
  const int32_t y1 = std::max(a.y + a.height, b.y + b.height);
  return Rect{x0, y0, x1 - x0, y1 - y0};
}

Surface::Surface(int32_t width, int32_t height)
    : width_(width), height_(height), pixels_(static_cast<size_t>(width) * height * 4, 0) {
  // Opaque black until the base frame arrives, so an early upload shows nothing odd.
  for (size_t i = 3; i < pixels_.size(); i += 4) pixels_[i] = 255;
}

bool Surface::Contains(const Rect& r) const {
  return r.x >= 0 && r.y >= 0 && r.width >= 0 && r.height >= 0 && r.x <= width_ - r.width &&
         r.y <= height_ - r.height;
}

void Surface::Blit(const Rect& rect, const uint8_t* rgba) {
  const size_t row_bytes = static_cast<size_t>(rect.width) * 4;
  for (int32_t row = 0; row < rect.height; ++row) {
    uint8_t* dst = pixels_.data() + (static_cast<size_t>(rect.y + row) * width_ + rect.x) * 4;
    std::memcpy(dst, rgba + row * row_bytes, row_bytes);
  }
}

void Surface::CopyOut(const Rect& rect, uint8_t* dst, int32_t dst_stride) const {
  const size_t row_bytes = static_cast<size_t>(rect.width) * 4;
  for (int32_t row = 0; row < rect.height; ++row) {
    const uint8_t* src =
        pixels_.data() + (static_cast<size_t>(rect.y + row) * width_ + rect.x) * 4;
    std::memcpy(dst + static_cast<size_t>(row) * dst_stride, src, row_bytes);
  }
}

}  // namespace avl
