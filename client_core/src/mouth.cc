#include "mouth.h"

#include <algorithm>
#include <cmath>

namespace avl {
namespace {

std::vector<float> Clamped(const float* values, int n) {
  std::vector<float> out(values, values + n);
  for (float& v : out) v = std::isnan(v) ? 0.0f : std::min(1.0f, std::max(0.0f, v));
  return out;
}

}  // namespace

MouthBlock MouthLayout::Rest() const {
  MouthBlock rest;
  rest.visemes.assign(visemes.size(), 0.0f);
  rest.blendshapes.assign(blendshapes.size(), 0.0f);
  const auto sil = std::find(visemes.begin(), visemes.end(), "sil");
  if (sil != visemes.end()) rest.visemes[static_cast<size_t>(sil - visemes.begin())] = 1.0f;
  return rest;
}

Error MakeMouthBlock(const MouthLayout& layout, int64_t pts_ms, const float* visemes,
                     int n_visemes, const float* blendshapes, int n_blendshapes, MouthBlock* out) {
  *out = MouthBlock{};
  if (n_visemes == 0 && n_blendshapes == 0) return Error::Ok();
  if (static_cast<size_t>(n_visemes) != layout.visemes.size() ||
      static_cast<size_t>(n_blendshapes) != layout.blendshapes.size()) {
    return MakeError(AVL_ERR_PROTOCOL,
                     "mouth block has " + std::to_string(n_visemes) + " visemes and " +
                         std::to_string(n_blendshapes) + " blendshapes but SessionStarted names " +
                         std::to_string(layout.visemes.size()) + " and " +
                         std::to_string(layout.blendshapes.size()));
  }
  out->present = true;
  out->pts_ms = pts_ms;
  out->visemes = Clamped(visemes, n_visemes);
  out->blendshapes = Clamped(blendshapes, n_blendshapes);
  return Error::Ok();
}

void CopyWeights(const std::vector<float>& weights, float* dst, int32_t n) {
  if (dst == nullptr || n <= 0) return;
  const size_t copied = std::min(weights.size(), static_cast<size_t>(n));
  std::copy(weights.begin(), weights.begin() + static_cast<std::ptrdiff_t>(copied), dst);
  std::fill(dst + copied, dst + n, 0.0f);
}

}  // namespace avl
