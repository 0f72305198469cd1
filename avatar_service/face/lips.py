"""Lip landmarks and mouth opening from mediapipe's face mesh, measured on the aligned face crop.

mouth_open = inner-lip gap (mesh points 13, 14) / inter-ocular distance (33, 263): the measure
FINDINGS.md used, scale-free, so it compares across people, crops and generated vs real video.
"""
from __future__ import annotations

import numpy as np

# The 40 points of mediapipe's FACEMESH_LIPS contours (outer and inner lip), sorted.
LIP_INDICES = (0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185, 191,
               267, 269, 270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415)
INNER_LIP = (13, 14)  # upper and lower inner-lip midpoints
EYE_CORNERS = (33, 263)  # outer eye corners
# Positions inside LIP_INDICES, so mouth opening can be read back from stored lip landmarks.
LIP_POS_13, LIP_POS_14 = LIP_INDICES.index(13), LIP_INDICES.index(14)
_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
OUTER_LIP_MASK = tuple(i in _OUTER for i in LIP_INDICES)  # per stored point: outer (True) or inner lip


def mouth_opening(mesh_xy: np.ndarray) -> float:
    """Inner-lip gap over inter-ocular distance from a (478, 2) mesh in pixels."""
    gap = np.linalg.norm(mesh_xy[INNER_LIP[0]] - mesh_xy[INNER_LIP[1]])
    iod = np.linalg.norm(mesh_xy[EYE_CORNERS[0]] - mesh_xy[EYE_CORNERS[1]])
    return float(gap / iod) if iod > 0 else float("nan")


class LipTracker:
    """mediapipe FaceMesh (refined) on a sequence of aligned RGB crops. One per process and clip:
    video mode tracks from frame to frame, so call `reset()` (or make a new one) between clips."""

    def __init__(self, static: bool = False, min_confidence: float = 0.5):
        self._static = static
        self._min_conf = min_confidence
        self._mesh = None

    def reset(self) -> None:
        if self._mesh is not None:
            self._mesh.close()
        import mediapipe as mp  # heavy: imported only when lips are measured

        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=self._static, max_num_faces=1, refine_landmarks=True,
            min_detection_confidence=self._min_conf, min_tracking_confidence=self._min_conf)

    def close(self) -> None:
        if self._mesh is not None:
            self._mesh.close()
            self._mesh = None

    def mesh(self, crop_rgb: np.ndarray) -> np.ndarray | None:
        """(478, 2) float32 mesh in crop pixels, or None when mediapipe finds no face."""
        if self._mesh is None:
            self.reset()
        res = self._mesh.process(np.ascontiguousarray(crop_rgb))
        if not res.multi_face_landmarks:
            return None
        h, w = crop_rgb.shape[:2]
        pts = res.multi_face_landmarks[0].landmark
        return np.array([(p.x * w, p.y * h) for p in pts], np.float32)

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
