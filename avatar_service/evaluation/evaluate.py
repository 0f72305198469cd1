"""`avatarlab eval`: re-synthesise held-out clips and score them against the real video and two
baselines, with numbers anyone can reproduce.

For each held-out clip: reference = its first frame; pose = each frame with the mouth masked; audio =
its own speech. Three videos are scored against the real one:
  model         the generator's mouth region blended into each real frame
  static        the reference frame's mouth region blended into each real frame (the mouth never moves,
                head pose follows: the honest "do nothing" baseline)
  ground_truth  the real video itself (the ceiling; LMD 0, PSNR inf)

With `--renderer warp` (runtime/warp_renderer.py) the rows are instead, all from the first frame as a
portrait that follows each real frame's head placement (a 2D similarity of its stable mesh vertices):
  warp          the reference's own pixels warped to the mouth geometry predicted from the clip's speech
  oracle        the same, driven by the real lower face as each frame's image shows it (head turns
                included), brought into the portrait through the frame's placement: the renderer alone
  oracle_motion driven by the real lower face's motion in the canonical frame (head pose removed: what
                a speech model predicts): the renderer with the motion representation
  still         the reference, mouth unchanged (the honest "do nothing" baseline for this protocol)
  ground_truth  the real video

With `--renderer warp --protocol dub` each real frame is the pose and keeps its own pixels, as `avatarlab
dub` re-voices a video (dub.py warp_frames): its lower face is moved from its own mesh to the person's
closed mouth (measured over the clip's least open frames) plus the motion predicted from the clip's
speech. The pose-frames protocol of the diffusion rows, for the warp renderer:
  dub           each frame's lower face moved to the speech's motion
  still         each frame's lower face moved to the closed mouth (the mouth never moves, head pose follows)
  ground_truth  the real video
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
WARP_METHODS = ("warp", "oracle", "oracle_motion", "still", "ground_truth")
DUB_METHODS = ("dub", "still", "ground_truth")


def load_clip(root: pathlib.Path, entry: dict, layout: FaceLayout, max_seconds: float, fps: float):
    """A prepared clip's first `max_seconds`, its video and audio paired again by the clip's measured
    audio/video offset (data/av_sync.py): crops resized to the model's crop size, 16 kHz audio, and the
    row of the stored clip the first crop is (for its cached meshes)."""
    import cv2

    from avatar_service.data.av_sync import apply_offset

    offset = int(entry.get("av_offset_frames", 0))
    with np.load(root / entry["path"]) as z:
        real, audio = apply_offset(z["crops"], z["audio"], offset, int(round(16000 / fps)))
    t = min(len(real), int(max_seconds * fps))
    real, audio = real[:t], audio[: int(t / fps * 16000)]
    if real.shape[1] != layout.crop_px:
        real = np.stack([cv2.resize(f, (layout.crop_px, layout.crop_px), interpolation=cv2.INTER_AREA) for f in real])
    return real, audio, max(0, offset)


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


def placements(reference_mesh: np.ndarray, real_mesh: np.ndarray) -> np.ndarray:
    """(T, 2, 3) 2D similarity per frame taking the reference's stable vertices onto the frame's (identity
    where the frame has no mesh): where a portrait's face would be if it followed the real head."""
    import cv2

    from avatar_service.face.mesh import STABLE

    out = np.repeat(np.eye(2, 3, dtype=np.float32)[None], len(real_mesh), 0)
    src = reference_mesh[list(STABLE), :2].astype(np.float32)
    for t, m in enumerate(real_mesh):
        if np.isfinite(m).all():
            a, _ = cv2.estimateAffinePartial2D(src, m[list(STABLE), :2].astype(np.float32))
            if a is not None:
                out[t] = a
    return out


def place(frames: np.ndarray, matrices: np.ndarray) -> np.ndarray:
    import cv2

    s = frames.shape[1]
    return np.stack([cv2.warpAffine(f, m, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                     for f, m in zip(frames, matrices)])


def synthesize_warp(motion, crops: np.ndarray, audio16k: np.ndarray, fps: float, real_mesh3d: np.ndarray,
                    real_mesh2d: np.ndarray, mouth_fill: str = "plain") -> dict[str, np.ndarray]:
    """Warp-renderer rows for one clip (see the module doc): warp (speech), oracle, oracle_motion, still;
    each placed like the real frames, the mouth's inside drawn by `mouth_fill` (face/warp.py WarpConfig).
    The reference mesh is measured as the server measures a portrait."""
    from avatar_service.face.warp import WarpConfig
    from avatar_service.runtime.warp_renderer import WarpFace, measure_mesh

    ref_mesh = measure_mesh(crops[0])
    face = WarpFace(crops[0], ref_mesh, motion.basis, WarpConfig(mouth_fill=mouth_fill))
    speech = np.stack([face.render(m).frame for m in motion.predict_clip(audio16k, len(crops), fps)])
    moves = placements(ref_mesh, real_mesh2d)
    ok = np.isfinite(real_mesh3d).all(axis=(1, 2))
    first = int(np.flatnonzero(ok)[0])
    # oracle_motion: the real lower face's motion in the canonical frame (what a motion model can say)
    measured = np.full((len(crops), motion.basis.n_components), np.nan, np.float32)
    measured[ok] = motion.basis.coefficients(real_mesh3d[ok])
    measured[~ok] = measured[first]
    oracle_motion = np.stack([face.render_delta(c - measured[first]).frame for c in measured])
    # oracle: the real lower face as the image shows it, head turns included, brought back into the
    # portrait through each frame's placement; the renderer alone, given the geometry to draw
    lower = motion.basis.vertices
    portrait_xy = np.stack([_unplace(m[lower, :2], a) if k else np.full((len(lower), 2), np.nan, np.float32)
                            for m, a, k in zip(real_mesh3d, moves, ok)])
    portrait_xy[~ok] = portrait_xy[first]
    targets = np.repeat(face.mesh[None], len(crops), 0)
    targets[:, lower, :2] += portrait_xy - portrait_xy[first]
    oracle = np.stack([face.render_target(t).frame for t in targets])
    return {"warp": place(speech, moves), "oracle": place(oracle, moves), "oracle_motion": place(oracle_motion, moves),
            "still": place(np.repeat(crops[:1], len(crops), 0), moves)}


def synthesize_dub(motion, crops: np.ndarray, audio16k: np.ndarray, fps: float, real_mesh3d: np.ndarray,
                   mouth_fill: str = "plain") -> dict[str, np.ndarray]:
    """Dub-protocol rows for one clip (see the module doc), through `avatarlab dub`'s own warp
    (dub.warp_frames); frames the face mesh missed keep their pixels in every row."""
    from avatar_service.dub import warp_frames

    ok = np.isfinite(real_mesh3d).all(axis=(1, 2))
    if not ok.any():  # no face to move: every row is the clip as it is
        return {"dub": crops.copy(), "still": crops.copy()}
    speech = motion.predict_clip(audio16k, len(crops), fps)
    rows = {}
    for name, m in (("dub", speech[ok]), ("still", np.zeros_like(speech[ok]))):
        out = crops.copy()
        out[ok] = np.stack(list(warp_frames(crops[ok], real_mesh3d[ok], motion, m, mouth_fill)))
        rows[name] = out
    return rows


def _unplace(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Image points of a frame -> the portrait's coordinates (the inverse of its placement `matrix`)."""
    import cv2

    inv = cv2.invertAffineTransform(matrix)
    return (points @ inv[:, :2].T + inv[:, 2]).astype(np.float32)


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
    track = metrics.mouth_track(frames) if frames is not real else real_track
    iod = np.where(np.isfinite(real_track.inter_ocular), real_track.inter_ocular, np.nanmedian(real_track.inter_ocular))
    out = {
        "lmd": metrics.lmd(track.lips, real_track.lips, iod),
        **metrics.lmd_parts(track.lips, real_track.lips, iod),
        "psnr": metrics.psnr(frames, real),
        "ssim": metrics.ssim(frames, real),
        "identity": metrics.identity_cosine(frames, reference, layout),
        "flicker": metrics.flicker(frames, layout),
        "mouth_open_r": metrics.mouth_open_correlation(track.mouth_open, real_track.mouth_open),
        "detail": metrics.detail(frames, real, real_track.mesh),
        **metrics.interior(frames, real, real_track.mesh),
    }
    if sync is not None:
        r = sync(frames, audio16k)
        out.update(lse_d=r.distance, lse_c=r.confidence, sync_offset_frames=r.offset_frames)
    else:  # no trained sync expert: say so (null in the JSON) rather than print a number from an untrained one
        out.update(lse_d=None, lse_c=None)
    return out


def evaluate(backend: Backend, dataset: str | pathlib.Path, sync_path: str | None, split: str = "val",
             steps: int = 4, guidance: float = 1.0, max_seconds: float = 8.0, videos: str | None = None,
             limit: int | None = None, calibrated: bool = True, log=print, motion=None, mouth_fill: str = "plain",
             protocol: str = "portrait") -> dict:
    """`motion` (a runtime.warp_renderer.MotionModel) selects the warp renderer's rows, drawn with
    `mouth_fill` (face/warp.py WarpConfig): WARP_METHODS for `protocol` "portrait", DUB_METHODS for "dub"."""
    from avatar_service.data.av_sync import unmeasured_note
    from avatar_service.media import write_mp4

    root = pathlib.Path(dataset)
    manifest = json.loads((root / "manifest.json").read_text())
    clips = [c for c in manifest["clips"] if c["split"] == split][:limit]
    if protocol not in ("portrait", "dub"):
        raise ValueError(f"protocol {protocol!r}: use portrait or dub")
    methods = METHODS if motion is None else WARP_METHODS if protocol == "portrait" else DUB_METHODS
    if not clips:
        raise ValueError(f"{root}: no clips in split {split!r}")
    layout = backend.config.layout
    sync = SyncScorer(sync_path) if sync_path else None
    fps = float(manifest.get("fps", 25))
    if note := unmeasured_note(manifest):
        log(f"{root}: {note}")
    per_clip = []
    for n, c in enumerate(clips):
        real, audio, first = load_clip(root, c, layout, max_seconds, fps)
        t = len(real)
        reference = real[:1]
        real_track = metrics.mouth_track(real)
        if motion is None:
            generated = synthesize(backend, real, audio, fps, steps, guidance, calibrated=calibrated)
            static_region = masked_region(real[0], layout)[0][None].repeat(len(real), 0)
            videos_of = {"model": generated, "static": composite_on_crops(real, static_region, layout)}
        elif protocol == "dub":
            videos_of = synthesize_dub(motion, real, audio, fps, _real_meshes(root, c["id"], real, first), mouth_fill)
        else:
            videos_of = synthesize_warp(motion, real, audio, fps, _real_meshes(root, c["id"], real, first), real_track.mesh,
                                        mouth_fill)
        videos_of["ground_truth"] = real
        row = {"clip": c["id"], "identity_label": c["identity"], "frames": int(t),
               "av_offset_frames": int(c.get("av_offset_frames", 0))}
        for name, frames in videos_of.items():
            row[name] = score(frames, real, real_track, reference, audio, layout, sync)
        per_clip.append(row)
        gen, still = methods[0], methods[-2]
        log(f"[{n + 1}/{len(clips)}] {c['id']}: lmd {gen} {row[gen]['lmd']:.4f} {still} {row[still]['lmd']:.4f}"
            + (f", lse_c {gen} {row[gen]['lse_c']:.2f} {still} {row[still]['lse_c']:.2f} real {row['ground_truth']['lse_c']:.2f}" if sync else "")
            + f", mouth-open r {gen} {row[gen]['mouth_open_r']:.2f} {still} {row[still]['mouth_open_r']:.2f}"
            + f", detail {gen} {row[gen]['detail']:.2f} {still} {row[still]['detail']:.2f}")
        if videos:
            vdir = pathlib.Path(videos)
            vdir.mkdir(parents=True, exist_ok=True)
            shown = [real, videos_of[still], videos_of[gen]] + ([videos_of["oracle"]] if "oracle" in videos_of else [])
            side = np.concatenate(shown, axis=2).repeat(2, axis=1).repeat(2, axis=2)
            write_mp4(vdir / f"{c['id']}.mp4", side, int(fps), audio, 16000)
            contact_sheet(vdir / f"{c['id']}.png", shown)
    overall = {m: _mean_scores([r[m] for r in per_clip]) for m in methods}
    return {"model_id": getattr(backend, "model_id", backend.config.name) if motion is None else "warp",
            "renderer": "diffusion" if motion is None else "warp", "methods": list(methods),
            **({} if motion is None else {"mouth_fill": mouth_fill, "protocol": protocol}),
            "steps": steps, "guidance": guidance,
            "mouth_calibration": calibrated, "split": split, "clips": len(per_clip), "frames": sum(r["frames"] for r in per_clip),
            **overall, "per_clip": per_clip}


def _real_meshes(root: pathlib.Path, clip_id: str, real: np.ndarray, first: int = 0) -> np.ndarray:
    """The real clip's 3D face meshes (from stored row `first` on): the dataset's cache (avatarlab train
    motion writes it), else measured."""
    from avatar_service.data import meshes

    path = meshes.mesh_path(root, clip_id)
    if path.exists():
        m = meshes.load(root, clip_id)[first: first + len(real)]
        if m.shape[0] == len(real):
            return m * (real.shape[1] / _crop_px_of(root))
    return meshes.clip_meshes(real)


def _crop_px_of(root: pathlib.Path) -> int:
    return int(json.loads((root / "manifest.json").read_text())["layout"]["crop_px"])


def contact_sheet(path: str | pathlib.Path, rows: list[np.ndarray], frames: int = 8) -> pathlib.Path:
    """A PNG of `frames` evenly spaced frames from each video (one row each, e.g. real | still | generated)."""
    from PIL import Image

    pick = np.linspace(0, len(rows[0]) - 1, frames).astype(int)
    sheet = np.concatenate([np.concatenate(list(r[pick]), axis=1) for r in rows], axis=0)
    Image.fromarray(sheet).save(path)
    return pathlib.Path(path)


def steps_grid(backend: Backend, dataset: str | pathlib.Path, path: str | pathlib.Path, steps=(1, 2, 4, 25),
               split: str = "val", frames: int = 8, guidance: float = 1.0) -> pathlib.Path:
    """A picture of quality against sampler steps: one row per step count (plus the real frames on top),
    `frames` evenly spaced frames of the first held-out clip."""
    from PIL import Image

    root = pathlib.Path(dataset)
    manifest = json.loads((root / "manifest.json").read_text())
    clip = next(c for c in manifest["clips"] if c["split"] == split)
    fps = float(manifest.get("fps", 25))
    real, audio, _ = load_clip(root, clip, backend.config.layout, 4.0, fps)
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
    methods = result.get("methods", METHODS)
    gen, still = methods[0], methods[-2]
    warp = result.get("renderer") == "warp"
    setup = ("the warp renderer re-voicing each real frame as `avatarlab dub` does (protocol dub)"
             if warp and result.get("protocol") == "dub" else
             "the warp renderer (reference = each clip's first frame, following the real head's placement)" if warp else
             f"{result['steps']} sampler steps, guidance {result['guidance']}, mouth calibration "
             f"{'on' if result.get('mouth_calibration', True) else 'off'}")
    lines = [f"# Evaluation on held-out identities", "",
             f"Command: `{command}`", "",
             f"{result['clips']} clips, {result['frames']} frames of {result['split']} identities; {setup}.", "",
             "| method | LMD (lower) | LSE-D (lower) | LSE-C (higher) | PSNR | SSIM | identity | flicker | mouth-open r | detail |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for m in methods:
        r = result[m]
        lse_d = "n/a" if r.get("lse_d") is None else f"{r['lse_d']:.3f}"
        lse_c = "n/a" if r.get("lse_c") is None else f"{r['lse_c']:.3f}"
        det = f"{r['detail']:.2f}" if "detail" in r else "n/a"
        lines.append(f"| {m} | {r['lmd']:.4f} | {lse_d} | {lse_c} | "
                     f"{r['psnr']:.2f} | {r['ssim']:.4f} | {r['identity']:.3f} | {r['flicker']:.2f} | {r['mouth_open_r']:.3f} | {det} |")
    if "lmd_shape" in result[gen]:
        lines += ["", "LMD without the mouth's place (`metrics.lmd_parts`): the generated lips moved by the clip's mean "
                  "offset from the real ones, then by each frame's own (lip shape alone):", "",
                  "| method | LMD | clip-placed | shape only |", "|---|---|---|---|"]
        lines += [f"| {m} | {result[m]['lmd']:.4f} | {result[m]['lmd_clip_placed']:.4f} | {result[m]['lmd_shape']:.4f} |"
                  for m in methods if m != "ground_truth"]
    if "interior_l1" in result[gen]:
        lines += ["", "Inside the mouth (`metrics.interior`: frames whose real inner-lip gap is >= 0.1 inter-ocular "
                  "distances, inside the real inner lips; meaningful where the geometry is the real one, the oracle row"
                  + (f"; mouth fill: {result['mouth_fill']}" if "mouth_fill" in result else "") + "):", "",
                  "| method | colour error (L1, 0-255, lower) | texture (gradient vs real, 1 = as real) | frames per clip |",
                  "|---|---|---|---|"]
        lines += [f"| {m} | {result[m]['interior_l1']:.2f} | {result[m]['interior_detail']:.3f} | {result[m]['interior_frames']:.0f} |"
                  for m in methods]
    has_lse = result[gen].get("lse_c") is not None
    lines += ["", f"Per clip (LMD {gen} / {still}, mouth-open r {gen} / {still}, detail {gen} / {still}"
              + (f", LSE-C {gen} / {still} / real" if has_lse else "") + "):", ""]
    for row in result["per_clip"]:
        lse = (f", LSE-C {row[gen]['lse_c']:.3f} / {row[still]['lse_c']:.3f} / {row['ground_truth']['lse_c']:.3f}"
               if has_lse else "")
        det = f", detail {row[gen]['detail']:.2f} / {row[still]['detail']:.2f}" if "detail" in row[gen] else ""
        off = row.get("av_offset_frames", 0)
        lines.append(f"- {row['clip']}: LMD {row[gen]['lmd']:.4f} / {row[still]['lmd']:.4f}, "
                     f"r {row[gen]['mouth_open_r']:.3f} / {row[still]['mouth_open_r']:.3f}{det}{lse}"
                     + (f" (audio/video offset {off:+d} frames applied)" if off else ""))
    if any(row.get("av_offset_frames", 0) for row in result["per_clip"]):
        lines += ["", "Offsets: each clip's audio/video offset as `avatarlab sync-offsets` measured it with the sync "
                  "expert (data/av_sync.py); video and audio are paired again by it before scoring."]
    return "\n".join(lines) + "\n"


def register(sub) -> None:
    from avatar_service.face.warp import add_mouth_fill_argument

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
    p.add_argument("--renderer", default="diffusion", choices=["diffusion", "warp"],
                   help="diffusion: the latent-diffusion generator's rows; warp: the warp renderer's (warp, oracle, still)")
    p.add_argument("--motion", default="default", help="motion model folder for --renderer warp (default: the embedded one)")
    p.add_argument("--protocol", default="portrait", choices=["portrait", "dub"],
                   help="--renderer warp: portrait (each clip's first frame animated, following the real head) or "
                        "dub (each real frame re-voiced in place, as `avatarlab dub`)")
    add_mouth_fill_argument(p)
    p.add_argument("--videos", help="write side-by-side mp4s (real | still | generated [| oracle]) with sound, and contact sheets (PNG), here")
    p.add_argument("--report", help="write a markdown report here")
    p.add_argument("--steps-grid", help="also write a PNG: real frames, then rows at 1, 2, 4 and 25 steps")
    p.set_defaults(func=_run)


def _motion(args):
    if args.renderer != "warp":
        return None
    from avatar_service.runtime.warp_renderer import MotionModel

    return MotionModel.default() if args.motion == "default" else MotionModel.from_pretrained(args.motion)


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
                      calibrated=not args.no_calibration, log=lambda s: print(s, file=sys.stderr, flush=True),
                      motion=_motion(args), mouth_fill=args.mouth_fill, protocol=args.protocol)
    pathlib.Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.json).write_text(json.dumps(result, indent=2))
    print(json.dumps({m: result[m] for m in result["methods"]}, indent=2))
    if args.steps_grid:
        steps_grid(backend, args.clips, args.steps_grid, guidance=args.guidance or cfg.default_guidance)
    if args.report:
        cmd = "avatarlab eval " + " ".join(sys.argv[2:])
        pathlib.Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(args.report).write_text(markdown(result, cmd))
    return 0
