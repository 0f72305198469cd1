"""Mouth motion -> what a 3D rig reads: ARKit-named blendshape weights and the 15 viseme weights.

Input is the speech motion of face/motion.py (K coefficients about the closed mouth, in units of each
component's spread: MotionPredictor.predict). It becomes a canonical lower face (the basis template,
unit inter-ocular distance, x to the image's right, y down, z away from the camera) and a handful of
distances on it are compared with the same distances on the closed mouth (motion 0). Each raw measure
is divided by its scale (the 95th percentile of that measure over the shared clips' measured motion,
so 1 is a wide but real movement) and clipped to [0, 1]. docs/motion.md has the table.

Visemes come from the geometry too: the nearest of 15 per-viseme shapes (mean motion of each viseme's
frames, learnt by training/rig.py), as soft weights; the loudness gate (model/motion.py) hands the
silent part of each frame to `sil`. The learnt viseme head (branch `motion`) can replace `visemes`.
"""
from __future__ import annotations

import dataclasses
import json
import pathlib

import numpy as np

from avatar_service.face.motion import MotionBasis
from avatar_service.speech.visemes import SIL, VISEMES

VISEME_NAMES = VISEMES
BLENDSHAPE_NAMES = (
    "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthLeft", "mouthRight", "mouthSmileLeft",
    "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight", "mouthRollLower", "mouthRollUpper",
    "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft",
    "mouthUpperUpRight")
CONFIG_NAME = "mouth_rig.json"

# mediapipe mesh vertices. "Left" is the face's own left, which is the image's right (+x) for a face
# looking at the camera, as ARKit names it.
CHIN = 152
CORNER_L, CORNER_R = 291, 61
UPPER_OUT, UPPER_IN, LOWER_IN, LOWER_OUT = 0, 13, 14, 17  # lip midpoints, top to bottom
UPPER_OUT_L, UPPER_OUT_R, UPPER_IN_L, UPPER_IN_R = 267, 37, 312, 82  # upper lip, half way to each corner
LOWER_OUT_L, LOWER_OUT_R, LOWER_IN_L, LOWER_IN_R = 314, 84, 317, 87  # lower lip, half way to each corner
POINTS = (CHIN, CORNER_L, CORNER_R, UPPER_OUT, UPPER_IN, LOWER_IN, LOWER_OUT, UPPER_OUT_L, UPPER_OUT_R,
          UPPER_IN_L, UPPER_IN_R, LOWER_OUT_L, LOWER_OUT_R, LOWER_IN_L, LOWER_IN_R)


def _pos(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def raw_measures(meshes: np.ndarray, closed: np.ndarray) -> np.ndarray:
    """(N, 478, 3) canonical meshes vs the (478, 3) closed mouth -> (N, 18) raw measures in
    inter-ocular units, in BLENDSHAPE_NAMES order (before scaling; negative = the opposite motion)."""
    return point_measures(np.asarray(meshes)[..., list(POINTS), :], np.asarray(closed)[list(POINTS)])


_AT = {v: k for k, v in enumerate(POINTS)}  # mesh vertex -> its row in a POINTS array


def point_measures(points: np.ndarray, closed: np.ndarray) -> np.ndarray:
    """`raw_measures` from the POINTS vertices alone ((N, P, 3) and (P, 3), POINTS order): what the
    streaming rig computes, without building whole meshes."""
    m, c = np.asarray(points, np.float64), np.asarray(closed, np.float64)

    def d(mesh, a, b):
        return np.linalg.norm(mesh[..., _AT[a], :] - mesh[..., _AT[b], :], axis=-1)

    def delta(fn):
        return fn(m) - fn(c)

    jaw = delta(lambda x: x[..., _AT[CHIN], 1])  # chin drop
    gap = delta(lambda x: d(x, UPPER_IN, LOWER_IN))  # inner lips part
    narrow = -delta(lambda x: d(x, CORNER_L, CORNER_R))
    protrude = -delta(lambda x: 0.5 * (x[..., _AT[UPPER_OUT], 2] + x[..., _AT[LOWER_OUT], 2]))  # towards the camera
    rounded = narrow + protrude
    centre = delta(lambda x: x[..., [_AT[v] for v in (CORNER_L, CORNER_R, UPPER_OUT, LOWER_OUT)], 0].mean(-1))
    out_l, out_r = delta(lambda x: x[..., _AT[CORNER_L], 0]), -delta(lambda x: x[..., _AT[CORNER_R], 0])
    up_l, up_r = -delta(lambda x: x[..., _AT[CORNER_L], 1]), -delta(lambda x: x[..., _AT[CORNER_R], 1])
    roll_upper = -delta(lambda x: d(x, UPPER_OUT, UPPER_IN))  # red of the lip turned in: it thins
    roll_lower = -delta(lambda x: d(x, LOWER_IN, LOWER_OUT))
    thin_l = -delta(lambda x: d(x, UPPER_OUT_L, UPPER_IN_L) + d(x, LOWER_IN_L, LOWER_OUT_L))
    thin_r = -delta(lambda x: d(x, UPPER_OUT_R, UPPER_IN_R) + d(x, LOWER_IN_R, LOWER_OUT_R))
    lower_l = delta(lambda x: x[..., _AT[LOWER_OUT_L], 1]) - jaw
    lower_r = delta(lambda x: x[..., _AT[LOWER_OUT_R], 1]) - jaw
    upper_l, upper_r = -delta(lambda x: x[..., _AT[UPPER_OUT_L], 1]), -delta(lambda x: x[..., _AT[UPPER_OUT_R], 1])
    parted = _pos(gap)
    return np.stack([
        jaw,  # jawOpen
        jaw - parted,  # mouthClose: the jaw drops but the lips stay together
        np.minimum(rounded, parted),  # mouthFunnel: rounded and open ("oh")
        rounded - parted,  # mouthPucker: rounded and closed ("oo", a kiss)
        centre, -centre,  # mouthLeft, mouthRight: the mouth slides sideways
        out_l + up_l, out_r + up_r,  # mouthSmile*: corner out and up
        out_l - up_l, out_r - up_r,  # mouthStretch*: corner out and down
        roll_lower, roll_upper,  # mouthRoll*
        thin_l - parted, thin_r - parted,  # mouthPress*: lips squeezed thin while closed
        lower_l, lower_r,  # mouthLowerDown*: the lower lip drops further than the jaw carries it
        upper_l, upper_r,  # mouthUpperUp*: the upper lip rises
    ], axis=-1).astype(np.float32)


@dataclasses.dataclass
class MouthRig:
    """Motion -> (visemes, blendshapes). `scales` (18,) divide the raw measures; `viseme_shapes`
    (15, K) is each viseme's mean motion; `viseme_width` the softness of the nearest-shape weights."""
    basis: MotionBasis
    scales: np.ndarray
    viseme_shapes: np.ndarray
    viseme_width: float = 0.3

    def __post_init__(self):
        t = np.asarray(self.basis.template, np.float32)
        self._closed = t.copy()
        self._closed[self.basis.vertices] = self.basis.mean.reshape(-1, 3)
        # only the vertices the measures read, so a frame costs a (K, 45) product
        rows = {v: k for k, v in enumerate(self.basis.vertices.tolist())}
        comp = self.basis.components.reshape(self.basis.n_components, -1, 3)
        self._points = np.array(POINTS)
        self._comp = np.stack([comp[:, rows[p]] if p in rows else np.zeros((self.basis.n_components, 3), np.float32)
                               for p in POINTS], axis=1) * self.basis.std[:, None, None]  # (K, P, 3)
        self._closed_pts = self._closed[self._points]

    def _canonical_points(self, motion: np.ndarray) -> np.ndarray:
        """(N, K) motion -> (N, P, 3) the POINTS vertices of the moved canonical face."""
        return self._closed_pts[None] + np.einsum("nk,kpd->npd", motion, self._comp)

    def raw(self, motion: np.ndarray) -> np.ndarray:
        motion = np.atleast_2d(np.asarray(motion, np.float32))
        return point_measures(self._canonical_points(motion), self._closed_pts)

    def blendshapes(self, motion: np.ndarray) -> np.ndarray:
        """(N, K) motion -> (N, 18) weights in [0, 1], BLENDSHAPE_NAMES order."""
        return np.clip(self.raw(motion) / self.scales, 0.0, 1.0)

    def visemes(self, motion: np.ndarray, voiced: np.ndarray | None = None) -> np.ndarray:
        """(N, K) motion, (N,) loudness gate in [0, 1] -> (N, 15) weights summing to 1."""
        motion = np.atleast_2d(np.asarray(motion, np.float32))
        d2 = ((motion[:, None, :] - self.viseme_shapes[None]) ** 2).sum(-1)
        d2[:, SIL] = np.inf  # silence is the gate's call, not a shape's: a closed PP is no pause
        logits = -(d2 - d2.min(1, keepdims=True)) / (2 * self.viseme_width ** 2)
        w = np.exp(logits)
        w /= w.sum(1, keepdims=True)
        g = np.ones(len(motion), np.float32) if voiced is None else np.asarray(voiced, np.float32)
        w *= g[:, None]
        w[:, SIL] += 1.0 - g
        return w.astype(np.float32)

    def motion_of_visemes(self, weights: np.ndarray) -> np.ndarray:
        """(N, 15) viseme weights -> (N, K) motion: the weighted mean of the viseme shapes (text path)."""
        return (np.asarray(weights, np.float32) @ self.viseme_shapes).astype(np.float32)

    # -- persistence: next to the motion model ------------------------------------------------------
    def save_pretrained(self, folder: str | pathlib.Path, notes: dict | None = None) -> None:
        folder = pathlib.Path(folder)
        (folder / CONFIG_NAME).write_text(json.dumps({
            "blendshape_names": list(BLENDSHAPE_NAMES), "scales": [float(s) for s in self.scales],
            "viseme_names": list(VISEME_NAMES), "viseme_shapes": self.viseme_shapes.round(5).tolist(),
            "viseme_width": self.viseme_width, **(notes or {})}, indent=1))

    @classmethod
    def from_pretrained(cls, folder: str | pathlib.Path, basis: MotionBasis) -> "MouthRig":
        cfg = json.loads((pathlib.Path(folder) / CONFIG_NAME).read_text())
        if tuple(cfg["blendshape_names"]) != BLENDSHAPE_NAMES or tuple(cfg["viseme_names"]) != VISEME_NAMES:
            raise ValueError(f"{folder}/{CONFIG_NAME} was fitted for other names: refit it (avatarlab train rig)")
        shapes = np.asarray(cfg["viseme_shapes"], np.float32)
        if shapes.shape != (len(VISEME_NAMES), basis.n_components):
            raise ValueError(f"{folder}/{CONFIG_NAME} has viseme shapes for another motion basis: refit it")
        return cls(basis, np.asarray(cfg["scales"], np.float32), shapes, float(cfg["viseme_width"]))
