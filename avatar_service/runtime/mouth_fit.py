"""The per-avatar mouth rescale that calibration (runtime/calibration.py) measures and compositing
(AvatarState.composite) applies to every frame: one `cv2.remap` with precomputed maps."""
from __future__ import annotations

import dataclasses
import functools

import cv2
import numpy as np

from avatar_service.face.align import FaceLayout


@dataclasses.dataclass(frozen=True)
class MouthFit:
    """(x', y') = c + (scale_x (x - cx), scale_y (y - cy)) within half the radii of the mouth centre c,
    easing (smoothstep) to the identity at the radii, so cheeks and jaw at the blend's edge never move.
    Crop-relative units."""
    cx: float
    cy: float
    scale_x: float
    scale_y: float
    radius_x: float
    radius_y: float

    def to_array(self) -> np.ndarray:
        return np.array(dataclasses.astuple(self), np.float64)

    @classmethod
    def from_array(cls, a: np.ndarray) -> "MouthFit":
        return cls(*(float(v) for v in np.asarray(a).ravel()))

    @functools.lru_cache(maxsize=8)
    def maps(self, layout: FaceLayout) -> tuple[np.ndarray, np.ndarray]:
        """cv2.remap maps (H, W) float32 for the generated region: where each output pixel samples from."""
        h, w = layout.region_shape
        s = layout.crop_px
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        yc = y + layout.region_rows[0]  # region rows -> crop rows
        cx, cy = self.cx * s, self.cy * s
        reach = _ease(np.abs(x - cx) / (self.radius_x * s)) * _ease(np.abs(yc - cy) / (self.radius_y * s))
        # the inverse of the rescale, weighted by its reach
        mx = x + reach * (cx + (x - cx) / self.scale_x - x)
        my = y + reach * (cy + (yc - cy) / self.scale_y - yc)
        return mx.astype(np.float32), my.astype(np.float32)

    def apply(self, region: np.ndarray, layout: FaceLayout) -> np.ndarray:
        """region (3, H, W) or (H, W, 3) float32 -> the same, rescaled about the mouth."""
        mx, my = self.maps(layout)
        chw = region.shape[0] == 3 and region.ndim == 3
        img = region.transpose(1, 2, 0) if chw else region
        out = cv2.remap(np.ascontiguousarray(img), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return out.transpose(2, 0, 1) if chw else out


def _ease(r: np.ndarray) -> np.ndarray:
    """1 up to r = 0.5, smoothstep down to 0 at r = 1."""
    t = np.clip(2 * r - 1, 0, 1)
    return 1 - t * t * (3 - 2 * t)
