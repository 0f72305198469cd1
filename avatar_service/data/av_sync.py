"""Each prepared clip's audio/video offset, measured by the lip-sync expert (model/sync.py), as LRS2 and
VoxCeleb were cleaned with SyncNet. ../shared/data/README.md asks for it: some clips' sync "was checked
only roughly: measure each clip's audio-video offset with your sync expert before trusting it, and drop
or shift a clip that is off".

How an offset is accepted: the expert's mean embedding distance is scanned over +-`max_offset` frames;
its margin is how far the best offset beats the best one two or more frames from it. A margin means
something only against what chance gives, so the same margin is measured on mismatched pairs (a clip's
lips against another person's audio, `null_pairs` per clip): an offset is applied only where the clip's
margin is rarer than `alpha` under that null. Unsure clips stay as recorded (offset 0).

Conventions: offset d means video frame t shows the mouth of audio frame t - d (the expert's and
training/motion_heads.sync_offsets' sign). `apply_offset` pairs them again. The expert memorised its own
training clips' alignment (it reads ~0 on them whatever their true offset), so on those clips this is
a no-op and the speech->motion training keeps its own cross-fold realignment; on clips it never saw it is
an independent judge. The manifest keeps the measurement (`av_sync`) and the offset applied
(`av_offset_frames`) per clip; training and evaluation read `av_offset_frames`.
"""
from __future__ import annotations

import dataclasses
import json
import pathlib

import numpy as np


@dataclasses.dataclass(frozen=True)
class AVSyncConfig:
    max_offset: int = 5  # frames either way: the offsets seen in the shared clips are 1-7 frames
    alpha: float = 0.05  # accept an offset whose margin chance (mismatched audio) reaches less often than this
    null_pairs: int = 3  # mismatched audio tracks per clip for the chance distribution
    seed: int = 0


def shift(y: np.ndarray, d: int) -> np.ndarray:
    """Row t of the result is y[t + d] (NaN past the ends): rows moved d frames earlier, so a clip measured
    d frames off has row t at audio frame t."""
    out = np.full_like(y, np.nan)
    if d >= 0:
        out[: len(y) - d] = y[d:]
    else:
        out[-d:] = y[:d]
    return out


def apply_offset(frames_or_rows: np.ndarray, audio: np.ndarray, offset: int, samples_per_frame: int):
    """Pair video rows and audio again for a clip measured `offset` frames off: drops the rows (and audio)
    that have no partner, so row t shows the mouth of audio frame t."""
    if offset > 0:  # the video lags: its first rows belong to audio before the clip
        return frames_or_rows[offset:], audio[: max(0, len(audio) - offset * samples_per_frame)]
    if offset < 0:  # the video leads: the first audio frames belong to rows before the clip
        return frames_or_rows[: len(frames_or_rows) + offset], audio[-offset * samples_per_frame:]
    return frames_or_rows, audio


def unmeasured_note(manifest: dict) -> str | None:
    """A line for logs when a dataset's clips were never measured (its rows are paired as recorded)."""
    if "av_sync" in manifest:
        return None
    return ("clips paired as recorded: their audio/video offsets were never measured "
            "(`avatarlab sync-offsets --data DATASET` measures and records them)")


def _margin(expert, lips: np.ndarray, audio: np.ndarray, max_offset: int) -> tuple[int, float]:
    from avatar_service.model.features import log_mel
    from avatar_service.training.sync import offset_distances

    r = offset_distances(expert, lips, log_mel(audio.astype(np.float32), expert.config.mel), max_offset=max_offset)
    d, o = np.asarray(r["distances"]), np.asarray(r["offsets"])
    best = int(np.argmin(d))
    return int(r["offset"]), float(d[np.abs(o - o[best]) >= 2].min() - d[best])


def measure(dataset: str | pathlib.Path, expert_path: str | pathlib.Path, cfg: AVSyncConfig = AVSyncConfig(),
            write: bool = True) -> dict[str, dict]:
    """Measure every clip of a prepared dataset; with `write`, record the results in its manifest.json."""
    from tqdm import tqdm

    from avatar_service.face.lips import centred_lips
    from avatar_service.model.sync import SyncExpert

    root = pathlib.Path(dataset)
    manifest = json.loads((root / "manifest.json").read_text())
    expert = SyncExpert.from_pretrained(expert_path).eval()
    spf = int(round(expert.config.mel.sample_rate_hz / float(manifest.get("fps", 25))))
    crop_px = int(manifest["layout"]["crop_px"])  # lips are in crop pixels; the crops themselves are not read
    clips, lips = {}, {}
    for c in manifest["clips"]:
        with np.load(root / c["path"]) as z:
            n = min(len(z["lips"]), len(z["audio"]) // spf)
            if n <= 2 * cfg.max_offset + 5:
                continue  # too short to scan
            clips[c["id"]] = (c, z["audio"][: n * spf])
            lips[c["id"]] = np.nan_to_num(centred_lips(z["lips"][:n], z["valid"][:n], crop_px))
    rng = np.random.default_rng(cfg.seed)
    null, found = [], {}
    for cid in tqdm(clips, desc="audio/video offsets", unit="clip"):
        c, audio = clips[cid]
        found[cid] = _margin(expert, lips[cid], audio, cfg.max_offset)
        n = len(lips[cid])
        others = [o for o, (oc, oa) in clips.items()
                  if oc.get("identity", o) != c.get("identity", cid) and len(oa) >= n * spf]
        for o in rng.choice(others, size=min(cfg.null_pairs, len(others)), replace=False) if others else []:
            null.append(_margin(expert, lips[cid], clips[o][1][: n * spf], cfg.max_offset)[1])
    null = np.asarray(null)
    out = {}
    for cid, (offset, margin) in found.items():
        p = float((null >= margin).mean()) if len(null) else 1.0
        out[cid] = {"offset_frames": offset, "margin": round(margin, 4), "p_chance": round(p, 3),
                    "applied": offset if p < cfg.alpha else 0}
    if write:
        for c in manifest["clips"]:
            if c["id"] in out:
                c["av_sync"] = {k: v for k, v in out[c["id"]].items() if k != "applied"}
                c["av_offset_frames"] = out[c["id"]]["applied"]
        manifest["av_sync"] = {"expert": str(expert_path), **dataclasses.asdict(cfg), "null_margins": len(null)}
        (root / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return out


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sync-offsets", help="measure each prepared clip's audio/video offset with the lip-sync expert",
        description="Scans +-MAX frames with the sync expert, compares each clip's margin with mismatched "
                    "audio's, and records the offset in DATASET/manifest.json (av_offset_frames) where chance "
                    "explains it less often than ALPHA. Training and evaluation read it.")
    p.add_argument("--data", required=True, metavar="DATASET", help="prepared dataset (avatarlab prepare)")
    p.add_argument("--expert", default=None, help="sync expert folder (default: the bundled one)")
    p.add_argument("--max-offset", type=int, default=AVSyncConfig.max_offset, metavar="MAX")
    p.add_argument("--alpha", type=float, default=AVSyncConfig.alpha)
    p.add_argument("--dry-run", action="store_true", help="print, do not write the manifest")
    p.set_defaults(func=run)


def run(args) -> int:
    from avatar_service.runtime.models import EMBEDDED_MODEL

    expert = args.expert or str(EMBEDDED_MODEL / "sync")
    res = measure(args.data, expert, AVSyncConfig(max_offset=args.max_offset, alpha=args.alpha), write=not args.dry_run)
    for cid, r in res.items():
        print(f"{cid:32s} offset {r['offset_frames']:+d}  margin {r['margin']:.4f}  p {r['p_chance']:.3f}  "
              f"applied {r['applied']:+d}")
    moved = sum(r["applied"] != 0 for r in res.values())
    print(f"{moved} of {len(res)} clips shifted" + (" (dry run)" if args.dry_run else f"; {args.data}/manifest.json updated"))
    return 0
