// The mouth block of a frame (visemes and ARKit-named blendshapes on the audio clock) and the
// session's names for its curves: validated off the wire, copied out to engines.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "status.h"

namespace avl {

struct MouthBlock {
  bool present = false;
  int64_t pts_ms = -1;
  std::vector<float> visemes;
  std::vector<float> blendshapes;
};

// SessionStarted's names: the order of every frame's arrays.
struct MouthLayout {
  std::vector<std::string> visemes;
  std::vector<std::string> blendshapes;

  // The weights with nothing said: `sil` 1 (found by name), everything else 0.
  MouthBlock Rest() const;
};

// Checks a frame's arrays against the layout (a block must carry every named curve) and clamps
// each weight into [0, 1] (NaN becomes 0), so an engine never gets a weight its rig would explode
// on. Empty arrays mean "no block" (a server that does not send motion): *out stays absent.
Error MakeMouthBlock(const MouthLayout& layout, int64_t pts_ms, const float* visemes,
                     int n_visemes, const float* blendshapes, int n_blendshapes, MouthBlock* out);

// Copies min(n, size) weights and zeroes the rest of `dst` (either may be NULL with n 0).
void CopyWeights(const std::vector<float>& weights, float* dst, int32_t n);

}  // namespace avl
