// Turns one frame's wire payload (RGBA8, RGB8 or a baseline JPEG of the rectangle) into tightly
// packed RGBA8. One decoder per presenting thread: the JPEG handle is not shareable.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "status.h"

namespace avl {

enum class WireFormat : int32_t { kRgba8 = 1, kRgb8 = 2, kJpeg = 3 };

class PixelDecoder {
 public:
  PixelDecoder() = default;
  ~PixelDecoder();
  PixelDecoder(const PixelDecoder&) = delete;
  PixelDecoder& operator=(const PixelDecoder&) = delete;

  // Decodes `payload` holding a width x height image into `out` (resized to width*height*4).
  Error Decode(WireFormat format, const std::string& payload, int32_t width, int32_t height,
               std::vector<uint8_t>* out);

 private:
  Error DecodeJpeg(const std::string& payload, int32_t width, int32_t height,
                   std::vector<uint8_t>* out);
  void* jpeg_ = nullptr;  // tjhandle, created on first JPEG
};

}  // namespace avl
