"""A prepared dataset's clips as mouth motion: each clip's face meshes (data/meshes.py, cached), their
coefficients in the lower-face motion basis (face/motion.py), the person's closed mouth and the
measured inner-lip opening per frame. The speech -> motion model (training/motion.py) learns from
them and the mouth rig (training/rig.py) takes its scales from them."""
from __future__ import annotations

import dataclasses
import json
import logging
import pathlib

import numpy as np

from avatar_service.face.mesh import mouth_opening
from avatar_service.face.motion import MotionBasis

log = logging.getLogger(__name__)


@dataclasses.dataclass
class ClipMotion:
    id: str
    split: str
    identity: str
    mesh: np.ndarray  # (T, 478, 3) crop pixels, NaN rows where no face
    coeffs: np.ndarray  # (T, K) absolute, NaN rows where no face
    closed: np.ndarray  # (K,) the person's closed mouth (mean of the least open frames)
    opening: np.ndarray  # (T,) inner-lip opening / inter-ocular distance
    audio: np.ndarray | None = None  # 16 kHz
    states: np.ndarray | None = None  # (S, D) encoder states of the clip's audio
    sped: dict[float, np.ndarray] = dataclasses.field(default_factory=dict)  # speed -> states of the sped-up audio
    windows: np.ndarray | None = None  # (T, 1, D, M) encoder-state windows (only while needed)

    def targets(self, basis: MotionBasis) -> np.ndarray:
        return (self.coeffs - self.closed) / basis.std


def load_clips(dataset: str, basis: MotionBasis | None = None, closed_quantile: float = 0.2,
               n_components: int = 12) -> tuple[MotionBasis, list[ClipMotion]]:
    from avatar_service.data import meshes
    from avatar_service.data.av_sync import shift, unmeasured_note

    meshes.extract(dataset)
    root = pathlib.Path(dataset)
    manifest = json.loads((root / "manifest.json").read_text())
    if note := unmeasured_note(manifest):
        log.info("%s: %s", root, note)
    # each clip's rows moved by its measured audio/video offset (data/av_sync.py), so row t is audio frame t
    raw = {c["id"]: (c["split"], c.get("identity", c["id"]), shift(meshes.load(root, c["id"]), c.get("av_offset_frames", 0)))
           for c in manifest["clips"]}
    if basis is None:
        basis = MotionBasis.fit([m for split, _, m in raw.values() if split == "train"], n_components)
    clips = []
    for cid, (split, identity, mesh) in raw.items():
        ok = np.isfinite(mesh).all(axis=(1, 2))
        if ok.sum() < 10:
            continue
        coeffs = np.full((len(mesh), basis.n_components), np.nan, np.float32)
        coeffs[ok] = basis.coefficients(mesh[ok])
        opening = np.array([mouth_opening(m) if k else np.nan for m, k in zip(mesh, ok)], np.float32)
        closed = coeffs[ok & (opening <= np.nanquantile(opening, closed_quantile))].mean(0)
        clips.append(ClipMotion(cid, split, identity, mesh, coeffs, closed, opening))
    return basis, clips
