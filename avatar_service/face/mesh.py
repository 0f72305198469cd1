"""mediapipe's 478-point face mesh in 3D, and the rigid fit that takes head pose out of it.

A mesh is (478, 3) float32 in image pixels: x, y as drawn, z in the same pixel scale (mediapipe's z is
relative to the image width), smaller z nearer the camera. Motion of the lower face is expressed in a
*canonical face frame*: each mesh is moved onto a fixed template by the 3D similarity (Umeyama) that best
fits its stable vertices (forehead, temples, eye corners, nose bridge), so what is left is the face's own
deformation with head pose and distance removed. Units there are inter-ocular distances.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from avatar_service.face.detect import FaceError

N_VERTICES = 478
# Vertices that the jaw and lips do not move: forehead and temple line, eye corners, nose bridge and tip.
STABLE = (10, 338, 297, 332, 284, 251, 389, 356, 127, 162, 21, 54, 103, 67, 109, 33, 133, 362, 263,
          168, 6, 197, 195, 5, 4, 1, 234, 454)
EYE_CORNERS = (33, 263)
NOSE_TIP = 1
# Closed loops, in order around the contour.
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152,
             148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
OUTER_LIP = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146)
INNER_LIP = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95)
INNER_UPPER, INNER_LOWER = 13, 14  # inner-lip midpoints
CHIN = 152
# Eyes and brows: the face's own sharpest detail, the yardstick for the mouth's (evaluation/metrics.py).
EYE_BROW = (33, 133, 159, 145, 362, 263, 386, 374, 70, 63, 105, 66, 107, 336, 296, 334, 293, 300)


class MeshError(FaceError):
    """No usable face mesh (the message says why): the same client error as a missing face."""


def inter_ocular(mesh: np.ndarray) -> float:
    return float(np.linalg.norm(mesh[EYE_CORNERS[0], :2] - mesh[EYE_CORNERS[1], :2]))


def mouth_opening(mesh: np.ndarray) -> float:
    """Inner-lip gap over inter-ocular distance (the measure FINDINGS.md uses), 2D."""
    iod = inter_ocular(mesh)
    gap = np.linalg.norm(mesh[INNER_UPPER, :2] - mesh[INNER_LOWER, :2])
    return float(gap / iod) if iod > 0 else float("nan")


@dataclasses.dataclass(frozen=True)
class Similarity:
    """x -> scale * R @ x + t, on (N, 3) rows."""
    scale: float
    rotation: np.ndarray  # (3, 3)
    translation: np.ndarray  # (3,)

    def apply(self, pts: np.ndarray) -> np.ndarray:
        return (self.scale * pts @ self.rotation.T + self.translation).astype(np.float32)

    def apply_vectors(self, vec: np.ndarray) -> np.ndarray:
        """Displacements: rotated and scaled, not translated."""
        return (self.scale * vec @ self.rotation.T).astype(np.float32)

    def inverse(self) -> "Similarity":
        r = self.rotation.T
        return Similarity(1.0 / self.scale, r, -(r @ self.translation) / self.scale)


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> Similarity:
    """Least-squares 3D similarity taking src (N, 3) onto dst (N, 3) (Umeyama 1991, no reflection)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    cov = b.T @ a / len(src)
    u, d, vt = np.linalg.svd(cov)
    sign = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[2, 2] = -1
    rot = u @ sign @ vt
    var = (a ** 2).sum() / len(src)
    scale = float(np.trace(np.diag(d) @ sign) / var) if var > 0 else 1.0
    return Similarity(scale, rot, mu_d - scale * rot @ mu_s)


def to_canonical(mesh: np.ndarray, template: np.ndarray) -> tuple[np.ndarray, Similarity]:
    """The mesh in the template's frame (fitted on STABLE vertices) and the similarity image -> canonical."""
    sim = fit_similarity(mesh[list(STABLE)], template[list(STABLE)])
    return sim.apply(mesh), sim


def normalised_template(mesh: np.ndarray) -> np.ndarray:
    """A mesh centred on its stable vertices and scaled to unit inter-ocular distance: a canonical frame."""
    m = np.asarray(mesh, np.float64)
    c = m[list(STABLE)].mean(0)
    return ((m - c) / inter_ocular(m)).astype(np.float32)


class FaceMesher:
    """mediapipe FaceMesh (refined, 478 points) on RGB images. `static=False` tracks between calls
    (video); make one per clip or call `reset()`. mediapipe is imported only here (it is heavy and an
    optional install for clients of the library)."""

    def __init__(self, static: bool = True, min_confidence: float = 0.5):
        self._static, self._min_conf, self._mesh = static, min_confidence, None

    def reset(self) -> None:
        self.close()
        try:
            import mediapipe as mp
        except ImportError as e:  # pragma: no cover - depends on the install
            raise MeshError("the face mesh needs mediapipe (pip install mediapipe==0.10.21 --no-deps)") from e
        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=self._static, max_num_faces=1, refine_landmarks=True,
            min_detection_confidence=self._min_conf, min_tracking_confidence=self._min_conf)

    def close(self) -> None:
        if self._mesh is not None:
            self._mesh.close()
            self._mesh = None

    def __enter__(self) -> "FaceMesher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __call__(self, rgb: np.ndarray) -> np.ndarray | None:
        """(478, 3) float32 mesh in image pixels, or None when no face is found."""
        if self._mesh is None:
            self.reset()
        res = self._mesh.process(np.ascontiguousarray(rgb))
        if not res.multi_face_landmarks:
            return None
        h, w = rgb.shape[:2]
        pts = np.array([(p.x, p.y, p.z) for p in res.multi_face_landmarks[0].landmark], np.float32)
        pts *= np.array([w, h, w], np.float32)
        return pts if np.isfinite(pts).all() else None
