#include "pixel_decoder.h"

#include <gtest/gtest.h>
#include <turbojpeg.h>

#include <cstdlib>

namespace avl {
namespace {

// A smooth gradient JPEG (4:4:4, quality 95) made with libjpeg-turbo's encoder.
std::string EncodeJpeg(int w, int h, std::vector<uint8_t>* rgb) {
  rgb->resize(static_cast<size_t>(w) * h * 3);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &(*rgb)[(static_cast<size_t>(y) * w + x) * 3];
      p[0] = static_cast<uint8_t>(x * 255 / (w - 1));
      p[1] = static_cast<uint8_t>(y * 255 / (h - 1));
      p[2] = 128;
    }
  }
  tjhandle tj = tjInitCompress();
  unsigned char* out = nullptr;
  unsigned long size = 0;
  EXPECT_EQ(tjCompress2(tj, rgb->data(), w, w * 3, h, TJPF_RGB, &out, &size, TJSAMP_444, 95, 0), 0);
  std::string jpeg(reinterpret_cast<char*>(out), size);
  tjFree(out);
  tjDestroy(tj);
  return jpeg;
}

TEST(PixelDecoder, Rgb8GainsAnOpaqueAlphaChannel) {
  PixelDecoder decoder;
  std::vector<uint8_t> out;
  ASSERT_TRUE(decoder.Decode(WireFormat::kRgb8, std::string("\x01\x02\x03\x04\x05\x06", 6), 2, 1,
                             &out).ok());
  EXPECT_EQ(out, (std::vector<uint8_t>{1, 2, 3, 255, 4, 5, 6, 255}));
}

TEST(PixelDecoder, JpegDecodesToRgbaCloseToTheSource) {
  std::vector<uint8_t> rgb;
  const std::string jpeg = EncodeJpeg(48, 32, &rgb);
  PixelDecoder decoder;
  std::vector<uint8_t> out;
  Error e = decoder.Decode(WireFormat::kJpeg, jpeg, 48, 32, &out);
  ASSERT_TRUE(e.ok()) << e.message;
  ASSERT_EQ(out.size(), 48u * 32 * 4);
  int worst = 0;
  for (size_t i = 0; i < 48u * 32; ++i) {
    for (int c = 0; c < 3; ++c) worst = std::max(worst, std::abs(out[4 * i + c] - rgb[3 * i + c]));
    ASSERT_EQ(out[4 * i + 3], 255);
  }
  EXPECT_LE(worst, 6) << "quality-95 JPEG of a gradient should be within a few levels";
}

TEST(PixelDecoder, JpegOfTheWrongSizeOrCorruptIsADecodeError) {
  std::vector<uint8_t> rgb;
  const std::string jpeg = EncodeJpeg(48, 32, &rgb);
  PixelDecoder decoder;
  std::vector<uint8_t> out;
  Error e = decoder.Decode(WireFormat::kJpeg, jpeg, 32, 32, &out);
  EXPECT_EQ(e.code, AVL_ERR_DECODE);
  EXPECT_NE(e.message.find("48x32"), std::string::npos) << e.message;

  e = decoder.Decode(WireFormat::kJpeg, jpeg.substr(0, jpeg.size() / 2), 48, 32, &out);
  EXPECT_EQ(e.code, AVL_ERR_DECODE) << "a truncated JPEG must not be shown half-drawn";

  e = decoder.Decode(WireFormat::kJpeg, std::string(500, '\x42'), 48, 32, &out);
  EXPECT_EQ(e.code, AVL_ERR_DECODE);

  // The decoder stays usable after errors.
  EXPECT_TRUE(decoder.Decode(WireFormat::kJpeg, jpeg, 48, 32, &out).ok());
}

}  // namespace
}  // namespace avl
