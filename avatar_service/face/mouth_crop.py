"""A mouth-centred, scale- and roll-normalised square crop, and the mask that says where a generated
mouth interior may be pasted back.

The crop is a similarity of the image: centred on the inner lips, rotated so the eye line is level,
scaled so its side is `side_iod` inter-ocular distances, `px` pixels wide. At 1.6 inter-ocular
distances a 64 px crop holds the mouth at the scale of the generator's 128 px face crops, whatever the
output resolution, so one model serves 128, 256 and 512 px frames.

The paste mask is the target inner-lip polygon dilated by `margin` inter-ocular distances and feathered:
a generated interior can change nothing outside the lips' hull and that margin.
"""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from avatar_service.face.mesh import EYE_CORNERS, INNER_LIP, inter_ocular

_SHIFT = 4


@dataclasses.dataclass(frozen=True)
class MouthCropConfig:
    px: int = 64
    side_iod: float = 0.9  # crop side in inter-ocular distances: the mouth spans about 3/4 of it
    # paste margin outside the inner lips and its soft edge (Gaussian sigma), inter-ocular distances: at
    # 0.05 / 0.03 the blurred paste ate a thin upper lip (the bundled portrait's smile)
    margin: float = 0.02
    feather: float = 0.015


@dataclasses.dataclass(frozen=True)
class MouthCrop:
    """The similarity `matrix` (2, 3) image -> crop pixels, for one mesh."""
    matrix: np.ndarray
    px: int

    @classmethod
    def of(cls, mesh: np.ndarray, cfg: MouthCropConfig = MouthCropConfig()) -> "MouthCrop":
        pts = np.asarray(mesh, np.float64)[:, :2]
        centre = pts[list(INNER_LIP)].mean(0)
        eye = pts[EYE_CORNERS[1]] - pts[EYE_CORNERS[0]]
        angle = np.arctan2(eye[1], eye[0])
        s = cfg.px / (cfg.side_iod * max(inter_ocular(mesh), 1e-6))
        c, si = np.cos(-angle) * s, np.sin(-angle) * s
        rot = np.array([[c, -si], [si, c]])
        t = np.array([cfg.px / 2, cfg.px / 2]) - rot @ centre
        return cls(np.concatenate([rot, t[:, None]], 1).astype(np.float64), cfg.px)

    def cut(self, image: np.ndarray) -> np.ndarray:
        """(px, px, C) crop of `image`."""
        flags = cv2.INTER_AREA if abs(np.linalg.det(self.matrix[:, :2])) < 1 else cv2.INTER_LINEAR
        return cv2.warpAffine(image, self.matrix, (self.px, self.px), flags=flags, borderMode=cv2.BORDER_REFLECT)

    def points(self, pts: np.ndarray) -> np.ndarray:
        """Image points (N, 2+) -> crop pixels (N, 2)."""
        return np.asarray(pts, np.float64)[:, :2] @ self.matrix[:, :2].T + self.matrix[:, 2]

    def inverse(self) -> np.ndarray:
        return cv2.invertAffineTransform(self.matrix)


def inner_mask(points: np.ndarray, shape: tuple[int, int], dilate_px: float = 0.0, feather_px: float = 0.0) -> np.ndarray:
    """(H, W) float32 in [0, 1]: the polygon of inner-lip `points` (20, 2) in pixels, grown by
    `dilate_px` and softened by a Gaussian of `feather_px`, then zeroed where the hard grown polygon is
    absent so the soft edge never reaches past it."""
    m = np.zeros(shape, np.uint8)
    cv2.fillPoly(m, [np.round(np.asarray(points)[:, :2] * (1 << _SHIFT)).astype(np.int32)], 255, cv2.LINE_AA, shift=_SHIFT)
    grow = int(np.ceil(dilate_px))
    if grow > 0:
        m = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    hard = m > 0
    soft = m.astype(np.float32) / 255
    if feather_px > 0:
        soft = cv2.GaussianBlur(soft, (0, 0), feather_px) * hard
    return soft


def paste(frame: np.ndarray, patch: np.ndarray, crop: MouthCrop, target: np.ndarray, alpha_scale: float,
          cfg: MouthCropConfig = MouthCropConfig()) -> tuple[int, int, int, int] | None:
    """Blend a generated crop `patch` (px, px, 3) back into `frame` (in place) inside the target inner
    lips' hull plus the feathered margin. Returns the changed rectangle (x, y, w, h), or None."""
    lips = np.asarray(target, np.float64)[list(INNER_LIP), :2]
    iod = inter_ocular(target)
    grow, soft = cfg.margin * iod, cfg.feather * iod
    pad = int(np.ceil(grow + 1))
    h, w = frame.shape[:2]
    x0, y0 = np.maximum(np.floor(lips.min(0)).astype(int) - pad, 0)
    x1, y1 = np.minimum(np.ceil(lips.max(0)).astype(int) + pad + 1, (w, h))
    if x1 <= x0 or y1 <= y0:
        return None
    alpha = inner_mask(lips - (x0, y0), (y1 - y0, x1 - x0), grow, soft)[..., None] * alpha_scale
    to_rect = crop.inverse()  # crop -> image, then shifted into the rectangle
    to_rect[:, 2] -= (x0, y0)
    back = cv2.warpAffine(patch, to_rect, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    region = frame[y0:y1, x0:x1].astype(np.float32)
    frame[y0:y1, x0:x1] = np.clip(region + alpha * (back.astype(np.float32) - region) + 0.5, 0, 255).astype(np.uint8)
    return int(x0), int(y0), int(x1 - x0), int(y1 - y0)
