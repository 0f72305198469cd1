"""`avatarlab eval`: re-synthesise held-out clips and score them against the real video and two
baselines, with numbers anyone can reproduce.

For each held-out clip: reference = its first frame; pose = each frame with the mouth masked; audio =
its own speech. Three videos are scored against the real one:
  model         the generator's mouth region blended into each real frame
  static        the reference frame's mouth region blended into each real frame (the mouth never moves,
                head pose follows: the honest "do nothing" baseline)
  ground_truth  the real video itself (the ceiling; LMD 0, PSNR inf)
"""
from __future__ import annotations

import json
import math
import pathlib
import sys

import numpy as np

from avatar_service.evaluation import metrics
from avatar_service.face.align import FaceLayout
from avatar_service.model.features import clip_windows
from avatar_service.runtime.avatar import composite_on_crops, lip_anchor, lip_points, masked_region
from avatar_service.runtime.backend import Backend
from avatar_service.runtime.calibration import calibrate
from avatar_service.runtime.sampler import sample_latents

METHODS = ("model", "static", "ground_truth")


def load_clip(path: pathlib.Path, layout: FaceLayout, max_seconds: float, fps: float):
    """A prepared clip's first `max_seconds`: crops resized to the model's crop size, audio, mel."""
    import cv2

    with np.load(path) as z:
        t = min(len(z["crops"]), int(max_seconds * fps))
        real, audio, mel = z["crops"][:t], z["audio"][: int(t / fps * 16000)], z["mel"]
    if real.shape[1] != layout.crop_px:
        real = np.stack([cv2.resize(f, (layout.crop_px, layout.crop_px), interpolation=cv2.INTER_AREA) for f in real])
    return real, audio, mel


def synthesize(backend: Backend, crops: np.ndarray, audio16k: np.ndarray, fps: float, steps: int,
               guidance: float, seed: int = 0, batch: int = 32, calibrated: bool = True) -> np.ndarray:
    """A clip's crops (T, S, S, 3) re-synthesised as the server shows them: reference = first frame, pose =
    masked frames, the generated mouth composited (calibrated to the reference's mouth unless `calibrated` is False)."""
    cfg = backend.config
    layout = cfg.layout
    regions, masked = zip(*(masked_region(c, layout) for c in crops))
    z_ref = backend.encode(np.stack(regions[:1]))[0]
    # the reference's lips, measured as the server measures an uploaded portrait (never each frame's own)
    anchor = lip_anchor(crops[0], backend.lip_rest)
    windows = clip_windows(audio16k, len(crops), fps, cfg.feature_extractor(), cfg.window)
    noise = np.random.default_rng(seed).standard_normal(cfg.latent_shape).astype(np.float32)
    out, z_pose0 = [], None
    for i in range(0, len(crops), batch):
        m = np.stack(masked[i:i + batch])
        n = len(m)
        z_m = backend.encode(m)
        if z_pose0 is None:
            z_pose0 = z_m[0]  # the reference's own pose, which calibration draws
        tokens, offsets = backend.audio(windows[i:i + n])
        z0 = sample_latents(backend, np.repeat(noise[None], n, 0), z_m, np.repeat(z_ref[None], n, 0),
                            tokens, steps, guidance, lip_points=lip_points(anchor, offsets, backend.lip_rest))
        out.append(backend.decode(z0))
    fit = calibrate(backend, crops[0], z_ref, z_pose0, anchor) if calibrated else None
    return composite_on_crops(crops, np.concatenate(out), layout, fit)


class SyncScorer:
    """LSE-D/C with the project's sync expert (Wav2Lip's recipe through metrics.sync_scores: one
    embedding per frame for video and audio, distances over +-15 frame offsets)."""

    def __init__(self, path: str | pathlib.Path):
        from avatar_service.model.sync import SyncExpert

        self.embed_video, self.embed_audio = SyncExpert.from_pretrained(path).per_frame_embedders()

    def __call__(self, crops: np.ndarray, audio16k: np.ndarray) -> metrics.LSEResult:
        return metrics.sync_scores(crops, audio16k, self.embed_video, self.embed_audio)


def score(frames: np.ndarray, real: np.ndarray, real_track: metrics.MouthTrack, reference: np.ndarray,
          audio16k: np.ndarray, layout: FaceLayout, sync: SyncScorer | None) -> dict[str, float]:
    track = metrics.mouth_track(frames)
    iod = np.where(np.isfinite(real_track.inter_ocular), real_track.inter_ocular, np.nanmedian(real_track.inter_ocular))
    out = {
        "lmd": metrics.lmd(track.lips, real_track.lips, iod),
        **metrics.lmd_parts(track.lips, real_track.lips, iod),
        "psnr": metrics.psnr(frames, real),
        "ssim": metrics.ssim(frames, real),
        "identity": metrics.identity_cosine(frames, reference, layout),
        "flicker": metrics.flicker(frames, layout),
        "mouth_open_r": metrics.mouth_open_correlation(track.mouth_open, real_track.mouth_open),
    }
    if sync is not None:
        r = sync(frames, audio16k)
        out.update(lse_d=r.distance, lse_c=r.confidence, sync_offset_frames=r.offset_frames)
    else:  # no trained sync expert: say so (null in the JSON) rather than print a number from an untrained one
        out.update(lse_d=None, lse_c=None)
    return out


def evaluate(backend: Backend, dataset: str | pathlib.Path, sync_path: str | None, split: str = "val",
             steps: int = 4, guidance: float = 1.0, max_seconds: float = 8.0, videos: str | None = None,
             limit: int | None = None, calibrated: bool = True, log=print) -> dict:
    from avatar_service.media import write_mp4

    root = pathlib.Path(dataset)
    manifest = json.loads((root / "manifest.json").read_text())
    clips = [c for c in manifest["clips"] if c["split"] == split][:limit]
    if not clips:
        raise ValueError(f"{root}: no clips in split {split!r}")
    layout = backend.config.layout
    sync = SyncScorer(sync_path) if sync_path else None
    fps = float(manifest.get("fps", 25))
    per_clip = []
    for n, c in enumerate(clips):
        real, audio, _ = load_clip(root / c["path"], layout, max_seconds, fps)
        t = len(real)
        reference = real[:1]
        generated = synthesize(backend, real, audio, fps, steps, guidance, calibrated=calibrated)
        static_region = masked_region(real[0], layout)[0][None].repeat(len(real), 0)
        static = composite_on_crops(real, static_region, layout)
        real_track = metrics.mouth_track(real)
        row = {"clip": c["id"], "identity_label": c["identity"], "frames": int(t)}
        for name, frames in (("model", generated), ("static", static), ("ground_truth", real)):
            row[name] = score(frames, real, real_track, reference, audio, layout, sync)
        per_clip.append(row)
        log(f"[{n + 1}/{len(clips)}] {c['id']}: lmd model {row['model']['lmd']:.4f} static {row['static']['lmd']:.4f}"
            + (f", lse_c model {row['model']['lse_c']:.2f} static {row['static']['lse_c']:.2f} real {row['ground_truth']['lse_c']:.2f}" if sync else "")
            + f", mouth-open r model {row['model']['mouth_open_r']:.2f} static {row['static']['mouth_open_r']:.2f}")
        if videos:
            vdir = pathlib.Path(videos)
            vdir.mkdir(parents=True, exist_ok=True)
            side = np.concatenate([real, static, generated], axis=2).repeat(2, axis=1).repeat(2, axis=2)
            write_mp4(vdir / f"{c['id']}.mp4", side, int(fps), audio, 16000)
    overall = {m: _mean_scores([r[m] for r in per_clip]) for m in METHODS}
    return {"model_id": getattr(backend, "model_id", backend.config.name), "steps": steps, "guidance": guidance,
            "mouth_calibration": calibrated, "split": split, "clips": len(per_clip), "frames": sum(r["frames"] for r in per_clip),
            **overall, "per_clip": per_clip}


def steps_grid(backend: Backend, dataset: str | pathlib.Path, path: str | pathlib.Path, steps=(1, 2, 4, 25),
               split: str = "val", frames: int = 8, guidance: float = 1.0) -> pathlib.Path:
    """A picture of quality against sampler steps: one row per step count (plus the real frames on top),
    `frames` evenly spaced frames of the first held-out clip."""
    from PIL import Image

    root = pathlib.Path(dataset)
    manifest = json.loads((root / "manifest.json").read_text())
    clip = next(c for c in manifest["clips"] if c["split"] == split)
    fps = float(manifest.get("fps", 25))
    real, audio, _ = load_clip(root / clip["path"], backend.config.layout, 4.0, fps)
    t = len(real)
    pick = np.linspace(0, t - 1, frames).astype(int)
    rows = [np.concatenate(list(real[pick]), axis=1)]
    for n in steps:
        gen = synthesize(backend, real, audio, fps, n, guidance)
        rows.append(np.concatenate(list(gen[pick]), axis=1))
    out = pathlib.Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, axis=0)).save(out)
    return out


def _mean_scores(rows: list[dict]) -> dict[str, float]:
    keys = rows[0].keys()
    out = {}
    for k in keys:
        if any(r[k] is None for r in rows):
            out[k] = None
            continue
        vals = np.array([r[k] for r in rows], np.float64)
        vals = vals[np.isfinite(vals)]
        out[k] = float(vals.mean()) if len(vals) else math.inf
    return out


def markdown(result: dict, command: str) -> str:
    lines = [f"# Evaluation on held-out identities", "",
             f"Command: `{command}`", "",
             f"{result['clips']} clips, {result['frames']} frames of {result['split']} identities; "
             f"{result['steps']} sampler steps, guidance {result['guidance']}, mouth calibration "
             f"{'on' if result.get('mouth_calibration', True) else 'off'}.", "",
             "| method | LMD (lower) | LSE-D (lower) | LSE-C (higher) | PSNR | SSIM | identity | flicker | mouth-open r |",
             "|---|---|---|---|---|---|---|---|---|"]
    for m in METHODS:
        r = result[m]
        lse_d = "n/a" if r.get("lse_d") is None else f"{r['lse_d']:.3f}"
        lse_c = "n/a" if r.get("lse_c") is None else f"{r['lse_c']:.3f}"
        lines.append(f"| {m} | {r['lmd']:.4f} | {lse_d} | {lse_c} | "
                     f"{r['psnr']:.2f} | {r['ssim']:.4f} | {r['identity']:.3f} | {r['flicker']:.2f} | {r['mouth_open_r']:.3f} |")
    if "lmd_shape" in result["model"]:
        lines += ["", "LMD without the mouth's place (`metrics.lmd_parts`): the generated lips moved by the clip's mean "
                  "offset from the real ones, then by each frame's own (lip shape alone):", "",
                  "| method | LMD | clip-placed | shape only |", "|---|---|---|---|"]
        lines += [f"| {m} | {result[m]['lmd']:.4f} | {result[m]['lmd_clip_placed']:.4f} | {result[m]['lmd_shape']:.4f} |"
                  for m in METHODS[:2]]
    has_lse = result["model"].get("lse_c") is not None
    lines += ["", "Per clip (LMD model / static, mouth-open r model / static"
              + (", LSE-C model / static / real" if has_lse else "") + "):", ""]
    for row in result["per_clip"]:
        lse = (f", LSE-C {row['model']['lse_c']:.3f} / {row['static']['lse_c']:.3f} / {row['ground_truth']['lse_c']:.3f}"
               if has_lse else "")
        lines.append(f"- {row['clip']}: LMD {row['model']['lmd']:.4f} / {row['static']['lmd']:.4f}, "
                     f"r {row['model']['mouth_open_r']:.3f} / {row['static']['mouth_open_r']:.3f}{lse}")
    return "\n".join(lines) + "\n"


def register(sub) -> None:
    p = sub.add_parser("eval", help="score the model on held-out clips against static and ground-truth baselines")
    p.add_argument("--clips", required=True, help="a dataset folder written by `avatarlab prepare`")
    p.add_argument("--json", required=True, help="results file")
    p.add_argument("--model", default="default")
    p.add_argument("--backend", default="torch", choices=["torch", "onnx"])
    p.add_argument("--sync", default="auto", help="sync expert folder; 'auto' = MODEL/sync if present; 'none'")
    p.add_argument("--split", default="val")
    p.add_argument("--steps", type=int, default=0, help="0 = the model's served default")
    p.add_argument("--guidance", type=float, default=0.0, help="0 = the model's default")
    p.add_argument("--max-seconds", type=float, default=8.0, help="per clip")
    p.add_argument("--limit", type=int, help="at most this many clips")
    p.add_argument("--no-calibration", action="store_true",
                   help="show the mouth as drawn, without the per-avatar mouth calibration (ablation)")
    p.add_argument("--videos", help="write side-by-side mp4s (real | static | model) with sound here")
    p.add_argument("--report", help="write a markdown report here")
    p.add_argument("--steps-grid", help="also write a PNG: real frames, then rows at 1, 2, 4 and 25 steps")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from avatar_service.runtime.models import load_backend
    from avatar_service.runtime.models import EMBEDDED_MODEL, model_id

    backend = load_backend(args.model, args.backend)
    backend.model_id = model_id(backend)
    sync = args.sync
    if sync == "auto":
        cand = (EMBEDDED_MODEL if args.model == "default" else pathlib.Path(args.model)) / "sync"
        sync = str(cand) if (cand / "config.json").exists() else None
    elif sync == "none":
        sync = None
    cfg = backend.config.serving.sampling
    result = evaluate(backend, args.clips, sync, args.split, args.steps or cfg.default_steps,
                      args.guidance or cfg.default_guidance, args.max_seconds, args.videos, args.limit,
                      calibrated=not args.no_calibration, log=lambda s: print(s, file=sys.stderr, flush=True))
    pathlib.Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.json).write_text(json.dumps(result, indent=2))
    print(json.dumps({m: result[m] for m in METHODS}, indent=2))
    if args.steps_grid:
        steps_grid(backend, args.clips, args.steps_grid, guidance=args.guidance or cfg.default_guidance)
    if args.report:
        cmd = "avatarlab eval " + " ".join(sys.argv[2:])
        pathlib.Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(args.report).write_text(markdown(result, cmd))
    return 0
