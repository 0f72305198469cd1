"""Similarity alignment to a canonical face crop, the mouth region the generator redraws, and its mask.

Everything is in relative coordinates of a square crop of side S, so training and serving agree at
any size. The generator works on `region` (the lower half of the crop) and redraws only what lies
under `mask` (a box over mouth, cheeks and chin, wide enough that no lip shape leaks through).
"""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np

# ArcFace's 5-point template for a 112x112 crop, the de-facto standard alignment.
_ARCFACE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)


@dataclasses.dataclass(frozen=True)
class FaceLayout:
    crop_px: int = 128  # S: side of the aligned face crop
    face_scale: float = 0.72  # template size relative to the crop: leaves room for chin and hair
    # Region the generator redraws: rows [region_top, 1) of the crop, all columns.
    region_top: float = 0.5
    # Mask box in crop coordinates (x0, y0, x1, y1); y1 = 1 lets the jaw drop freely.
    mask_box: tuple[float, float, float, float] = (0.2, 0.58, 0.8, 1.0)
    feather: float = 0.04  # soft edge of the blend, relative to S
    # What is shown of the generated region: an ellipse over lips and chin inside the mask box. The model
    # redraws the whole box (so no lip shape leaks in), but cheeks and neck look best left as they were.
    blend_box: tuple[float, float, float, float] = (0.2, 0.58, 0.8, 1.0)

    def template(self) -> np.ndarray:
        """(5, 2) landmark targets in crop pixels."""
        rel = _ARCFACE_112 / 112.0
        offset = (1.0 - self.face_scale) / 2
        pts = rel * self.face_scale + np.array([offset, offset - 0.04], np.float32)
        return pts * self.crop_px

    @property
    def region_rows(self) -> tuple[int, int]:
        return int(round(self.region_top * self.crop_px)), self.crop_px

    @property
    def region_shape(self) -> tuple[int, int]:
        """(H, W) of the generated region in pixels."""
        r0, r1 = self.region_rows
        return r1 - r0, self.crop_px

    def region_mask(self, soft: bool = False) -> np.ndarray:
        """(H, W) float32 in [0, 1]. Hard: 1 where the generator redraws (the mask box). Soft: the blend
        weight, an ellipse inside `blend_box` feathered inward so it reaches 0 before its edge: no seam,
        and nothing outside the mask box ever changes."""
        h, w = self.region_shape
        r0 = self.region_rows[0]
        s = self.crop_px
        m = np.zeros((h, w), np.float32)
        if not soft:
            x0, y0, x1, y1 = self.mask_box
            m[max(0, int(y0 * s) - r0): int(y1 * s) - r0, int(x0 * s): int(x1 * s)] = 1.0
            return m
        x0, y0, x1, y1 = self.blend_box
        centre = (int(round((x0 + x1) / 2 * s)), int(round((y0 + y1) / 2 * s)) - r0)
        axes = (int(round((x1 - x0) / 2 * s)), int(round((y1 - y0) / 2 * s)))
        cv2.ellipse(m, centre, axes, 0, 0, 360, 1.0, thickness=-1)
        k = max(1, int(self.feather * s))
        eroded = cv2.erode(m, np.ones((2 * k + 1, 2 * k + 1), np.uint8), borderType=cv2.BORDER_REPLICATE)
        return cv2.GaussianBlur(eroded, (0, 0), sigmaX=k / 2, borderType=cv2.BORDER_REPLICATE)


def align_matrix(landmarks: np.ndarray, layout: FaceLayout) -> np.ndarray:
    """2x3 similarity transform from image pixels to crop pixels."""
    m, _ = cv2.estimateAffinePartial2D(landmarks.astype(np.float32), layout.template(), method=cv2.LMEDS)
    if m is None:
        raise ValueError("could not align the face: landmarks are degenerate")
    return m.astype(np.float32)


def warp_to_crop(rgb: np.ndarray, matrix: np.ndarray, layout: FaceLayout) -> np.ndarray:
    """(S, S, 3) uint8 aligned crop."""
    s = layout.crop_px
    return cv2.warpAffine(rgb, matrix, (s, s), flags=cv2.INTER_AREA if matrix[0, 0] < 1 else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def smooth_matrices(matrices: np.ndarray, sigma_frames: float = 2.0) -> np.ndarray:
    """Temporally smooth a (T, 2, 3) stack of crop transforms so the crop does not jitter."""
    if len(matrices) < 3 or sigma_frames <= 0:
        return matrices
    radius = int(3 * sigma_frames)
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma_frames) ** 2)
    k /= k.sum()
    flat = matrices.reshape(len(matrices), -1)
    padded = np.pad(flat, ((radius, radius), (0, 0)), mode="edge")
    out = np.stack([np.convolve(padded[:, j], k, mode="valid") for j in range(flat.shape[1])], axis=1)
    return out.reshape(matrices.shape).astype(np.float32)
