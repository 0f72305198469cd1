#include "pixel_decoder.h"

#include <turbojpeg.h>

#include <cstring>

namespace avl {

PixelDecoder::~PixelDecoder() {
  if (jpeg_ != nullptr) tjDestroy(static_cast<tjhandle>(jpeg_));
}

Error PixelDecoder::Decode(WireFormat format, const std::string& payload, int32_t width,
                           int32_t height, std::vector<uint8_t>* out) {
  const size_t pixels = static_cast<size_t>(width) * height;
  auto size_error = [&](size_t expected) {
    return MakeError(AVL_ERR_PROTOCOL, "frame payload is " + std::to_string(payload.size()) +
                                           " bytes, expected " + std::to_string(expected) +
                                           " for " + std::to_string(width) + "x" +
                                           std::to_string(height));
  };
  switch (format) {
    case WireFormat::kRgba8:
      if (payload.size() != pixels * 4) return size_error(pixels * 4);
      out->assign(payload.begin(), payload.end());
      return Error::Ok();
    case WireFormat::kRgb8: {
      if (payload.size() != pixels * 3) return size_error(pixels * 3);
      out->resize(pixels * 4);
      const auto* src = reinterpret_cast<const uint8_t*>(payload.data());
      uint8_t* dst = out->data();
      for (size_t i = 0; i < pixels; ++i) {
        dst[4 * i + 0] = src[3 * i + 0];
        dst[4 * i + 1] = src[3 * i + 1];
        dst[4 * i + 2] = src[3 * i + 2];
        dst[4 * i + 3] = 255;
      }
      return Error::Ok();
    }
    case WireFormat::kJpeg:
      return DecodeJpeg(payload, width, height, out);
  }
  return MakeError(AVL_ERR_PROTOCOL, "unknown pixel format " +
                                         std::to_string(static_cast<int32_t>(format)));
}

Error PixelDecoder::DecodeJpeg(const std::string& payload, int32_t width, int32_t height,
                               std::vector<uint8_t>* out) {
  if (jpeg_ == nullptr) {
    jpeg_ = tjInitDecompress();
    if (jpeg_ == nullptr) {
      return MakeError(AVL_ERR_DECODE, std::string("tjInitDecompress: ") + tjGetErrorStr());
    }
  }
  auto handle = static_cast<tjhandle>(jpeg_);
  auto* data = reinterpret_cast<const unsigned char*>(payload.data());
  const auto size = static_cast<unsigned long>(payload.size());
  int w = 0, h = 0, subsamp = 0, colorspace = 0;
  if (tjDecompressHeader3(handle, data, size, &w, &h, &subsamp, &colorspace) != 0) {
    return MakeError(AVL_ERR_DECODE,
                     std::string("JPEG header unreadable: ") + tjGetErrorStr2(handle));
  }
  if (w != width || h != height) {
    return MakeError(AVL_ERR_DECODE, "JPEG is " + std::to_string(w) + "x" + std::to_string(h) +
                                         " but its rectangle is " + std::to_string(width) + "x" +
                                         std::to_string(height));
  }
  out->resize(static_cast<size_t>(width) * height * 4);
  if (tjDecompress2(handle, data, size, out->data(), width, width * 4, height, TJPF_RGBA,
                    TJFLAG_STOPONWARNING) != 0) {
    // Warnings (e.g. a truncated but displayable image) are errors here: a torn frame on an
    // NPC's face is worse than a skipped one.
    return MakeError(AVL_ERR_DECODE, std::string("JPEG decode failed: ") + tjGetErrorStr2(handle));
  }
  return Error::Ok();
}

}  // namespace avl
