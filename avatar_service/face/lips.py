"""Lip landmarks and mouth opening from mediapipe's face mesh, measured on the aligned face crop.

mouth_open = inner-lip gap (mesh points 13, 14) / inter-ocular distance (33, 263): the measure
FINDINGS.md used, scale-free, so it compares across people, crops and generated vs real video.
"""
from __future__ import annotations

import numpy as np

from avatar_service.face.mesh import EYE_CORNERS, INNER_LOWER, INNER_UPPER, OUTER_LIP, FaceMesher, mouth_opening

# The 40 points of mediapipe's FACEMESH_LIPS contours (outer and inner lip), sorted.
LIP_INDICES = (0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185, 191,
               267, 269, 270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415)
INNER_LIP = (INNER_UPPER, INNER_LOWER)  # upper and lower inner-lip midpoints
# Positions inside LIP_INDICES, so mouth opening can be read back from stored lip landmarks.
LIP_POS_13, LIP_POS_14 = LIP_INDICES.index(13), LIP_INDICES.index(14)
OUTER_LIP_MASK = tuple(i in OUTER_LIP for i in LIP_INDICES)  # per stored point: outer (True) or inner lip


class LipTracker(FaceMesher):
    """The face mesh (face/mesh.py) read as lips, on a sequence of aligned RGB crops. Video mode tracks
    from frame to frame, so call `reset()` (or make a new one) between clips."""

    def __init__(self, static: bool = False, min_confidence: float = 0.5):
        super().__init__(static, min_confidence)

    def mesh(self, crop_rgb: np.ndarray) -> np.ndarray | None:
        """(478, 2) float32 mesh in crop pixels, or None when mediapipe finds no face."""
        m = self(crop_rgb)
        return None if m is None else np.ascontiguousarray(m[:, :2])

    def measure(self, crop_rgb: np.ndarray) -> tuple[np.ndarray, float]:
        """(40, 2) lip landmarks in crop pixels and mouth opening; NaNs when mediapipe fails."""
        xy = self.mesh(crop_rgb)
        if xy is None:
            return np.full((len(LIP_INDICES), 2), np.nan, np.float32), float("nan")
        return xy[list(LIP_INDICES)], mouth_opening(xy)


def centred_lips(lips: np.ndarray, valid: np.ndarray, crops_px: int) -> np.ndarray:
    """(T, 40, 2) lip landmarks in crop pixels -> (T, 80) lip *shape* offsets in crop widths: each frame's
    centroid is removed (where the mouth sits comes from the pose frame, not from audio: a denoiser told
    the position learns to trust the token over the picture, and audio cannot predict it), then the
    clip's mean shape (who the person is), leaving how the lips move."""
    pts = np.asarray(lips, np.float64)
    x = (pts - pts.mean(axis=1, keepdims=True)).reshape(len(pts), -1) / crops_px
    ok = valid & np.isfinite(x).all(axis=1)
    if not ok.any():
        return np.full(x.shape, np.nan, np.float32)
    out = x - x[ok].mean(axis=0)
    out[~ok] = np.nan
    return out.astype(np.float32)
