"""`avatarlab train motion`: the lower-face motion basis and the speech -> motion predictor, fitted in
closed form on a prepared dataset (face meshes are extracted and cached first, with progress).

Both are fitted on the train split only; the val split (other people) gives the held-out scores:
mouth-opening correlation of the predicted geometry, and LMD of the predicted lips against a still mouth.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import pathlib

import numpy as np
from tqdm import tqdm

from avatar_service.face.mesh import mouth_opening
from avatar_service.face.motion import MotionBasis
from avatar_service.model.motion import MotionPredictor, MotionPredictorConfig

log = logging.getLogger(__name__)


@dataclasses.dataclass
class ClipMotion:
    id: str
    split: str
    mesh: np.ndarray  # (T, 478, 3) crop pixels, NaN rows where no face
    coeffs: np.ndarray  # (T, K) absolute, NaN rows where no face
    closed: np.ndarray  # (K,) the person's closed mouth (mean of the least open frames)
    opening: np.ndarray  # (T,) inner-lip opening / inter-ocular distance
    windows: np.ndarray | None = None  # (T, 1, D, M) encoder-state windows

    def targets(self, basis: MotionBasis) -> np.ndarray:
        return (self.coeffs - self.closed) / basis.std


def load_clips(dataset: str, basis: MotionBasis | None = None, closed_quantile: float = 0.2,
               n_components: int = 12) -> tuple[MotionBasis, list[ClipMotion]]:
    from avatar_service.data import meshes

    meshes.extract(dataset)
    root = pathlib.Path(dataset)
    manifest = json.loads((root / "manifest.json").read_text())
    raw = {c["id"]: (c["split"], meshes.load(root, c["id"])) for c in manifest["clips"]}
    if basis is None:
        basis = MotionBasis.fit([m for split, m in raw.values() if split == "train"], n_components)
    clips = []
    for cid, (split, mesh) in raw.items():
        ok = np.isfinite(mesh).all(axis=(1, 2))
        if ok.sum() < 10:
            continue
        coeffs = np.full((len(mesh), basis.n_components), np.nan, np.float32)
        coeffs[ok] = basis.coefficients(mesh[ok])
        opening = np.array([mouth_opening(m) if k else np.nan for m, k in zip(mesh, ok)], np.float32)
        closed = coeffs[ok & (opening <= np.nanquantile(opening, closed_quantile))].mean(0)
        clips.append(ClipMotion(cid, split, mesh, coeffs, closed, opening))
    return basis, clips


def add_windows(dataset: str, clips: list[ClipMotion], config: MotionPredictorConfig) -> None:
    from avatar_service.model.features import WhisperConfig
    from avatar_service.model.whisper import WhisperFeatures

    root = pathlib.Path(dataset)
    manifest = {c["id"]: c for c in json.loads((root / "manifest.json").read_text())["clips"]}
    feat = WhisperFeatures.shared(WhisperConfig(), 16000, "cpu")
    spec = config.window
    for c in tqdm(clips, desc="audio features", unit="clip"):
        with np.load(root / manifest[c.id]["path"]) as z:
            audio = z["audio"]
        centres = spec.mel_centres(np.arange(len(c.mesh)), 25.0, feat)
        c.windows = spec.gather(feat.all(audio), 0, centres, feat)


def predicted_meshes(basis: MotionBasis, clip: ClipMotion, pred: np.ndarray, ref: int) -> np.ndarray:
    """The clip's reference frame with its lower face moved to the predicted motion, per frame."""
    base = clip.coeffs[ref]
    closed = basis.closed_coefficients(clip.mesh[ref])
    return np.stack([basis.target_mesh(clip.mesh[ref], closed + p * basis.std - base) for p in pred])


def score(basis: MotionBasis, predictor: MotionPredictor, clips: list[ClipMotion]) -> dict:
    """Held-out scores per clip: opening r of the predicted geometry on the clip's own first face."""
    out = {}
    for c in clips:
        ok = np.isfinite(c.opening)
        ref = int(np.flatnonzero(ok)[0])
        pred = predictor.predict(c.windows)
        moved = predicted_meshes(basis, c, pred, ref)
        opening = np.array([mouth_opening(m) for m in moved])
        r = float(np.corrcoef(opening[ok], c.opening[ok])[0, 1]) if np.std(c.opening[ok]) > 0 else float("nan")
        out[c.id] = {"opening_r": r}
    rs = [v["opening_r"] for v in out.values() if np.isfinite(v["opening_r"])]
    return {"mean_opening_r": float(np.mean(rs)) if rs else float("nan"), "clips": out}


def fit(dataset: str, out: str, n_components: int = 12, config: MotionPredictorConfig = MotionPredictorConfig()) -> dict:
    basis, clips = load_clips(dataset, n_components=n_components)
    add_windows(dataset, clips, config)
    train = [c for c in clips if c.split == "train"]
    predictor = MotionPredictor.fit([c.windows for c in train], [c.targets(basis) for c in train], config)
    val = [c for c in clips if c.split == "val"]
    result = {"dataset": str(dataset), "train_clips": len(train), "val_clips": len(val),
              "components": basis.n_components, "val": score(basis, predictor, val)}
    out_dir = pathlib.Path(out)
    basis.save_pretrained(out_dir)
    predictor.save_pretrained(out_dir)
    (out_dir / "motion_scores.json").write_text(json.dumps(result, indent=2))
    log.info("motion: val opening r %.3f over %d clips", result["val"]["mean_opening_r"], len(val))
    return result


def run(args) -> int:
    cfg = MotionPredictorConfig(ridge=args.ridge, articulation=args.articulation)
    res = fit(args.data, args.out, args.components, cfg)
    print(json.dumps({k: v for k, v in res.items() if k != "val"} | {"val_opening_r": res["val"]["mean_opening_r"]}))
    return 0


def register(stages) -> None:
    s = stages.add_parser("motion", help="lower-face motion basis + speech -> motion predictor (closed form, minutes on a CPU)")
    s.add_argument("--data", required=True, help="dataset folder with manifest.json (avatarlab prepare)")
    s.add_argument("--out", required=True, help="folder for motion_basis.* and motion_predictor.*")
    s.add_argument("--components", type=int, default=12)
    s.add_argument("--ridge", type=float, default=MotionPredictorConfig.ridge)
    s.add_argument("--articulation", type=float, default=MotionPredictorConfig.articulation)
    s.set_defaults(func=run)
