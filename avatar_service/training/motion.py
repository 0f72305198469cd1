"""`avatarlab train motion`: the lower-face motion basis and the speech -> motion model (motion and
viseme heads), fitted on a prepared dataset plus synthetic speech, on a CPU in minutes.

1. Face meshes of every clip (cached in the dataset), the motion basis on the train split, each
   clip's motion about its closed mouth.
2. Whisper states of every clip at the model's own feature settings (cached under --cache-dir).
3. Sync: each training clip's audio/video offset is estimated by a linear probe fitted on the other
   people (SyncNet-style data cleaning); targets are realigned, clips that no offset explains are
   dropped. The val split (other people) is never touched.
4. The motion head (a small MLP, or the linear probe with --head ridge) on the train split.
5. The viseme head on synthetic lines (piper and espeak-ng, exact phoneme timings); held-out lines
   score it (accuracy per viseme, confusion matrix).
6. Scores on val: mouth-opening correlation and lip distance of the predicted geometry put on each
   clip's own first face (and the same for the linear probe, the closed mouth and, with
   --compare-phones, pocketsphinx phone recognition), written to motion_scores.json with plots.
7. The mouth rig beside it (training/rig.py: blendshape scales, viseme shapes), unless --no-rig.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import pathlib
import time

import numpy as np
from tqdm import tqdm

from avatar_service.data.av_sync import shift
from avatar_service.data.motion_clips import ClipMotion, load_clips
from avatar_service.face.mesh import INNER_LIP, OUTER_LIP, mouth_opening
from avatar_service.face.motion import MotionBasis
from avatar_service.model.features import WhisperConfig
from avatar_service.model.motion import Head, MotionPredictor, MotionPredictorConfig
from avatar_service.training.motion_heads import HeadConfig, fit_mlp, fit_ridge, projection, sync_offsets

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class MotionTrainConfig:
    components: int = 12
    predictor: MotionPredictorConfig = MotionPredictorConfig()
    head: str = "mlp"  # "mlp" or "ridge" (the linear probe)
    motion_head: HeadConfig = HeadConfig(hidden=64, epochs=8, batch=256, seeds=3)  # more epochs overfit the 48 clips
    ridge: float = 30.0  # the linear probe's per-sample penalty
    opening_weight: float = 1.0  # extra loss on the motion's mouth-opening direction
    align: bool = True  # realign training clips by their estimated audio/video offset
    min_sync_r: float = 0.3  # drop training clips whose best offset still reads the mouth worse than this
    max_offset: int = 8  # frames searched either way
    speeds: tuple[float, ...] = (0.9, 1.1)  # speed perturbation of the training clips (audio and motion together)
    silence_s: float = 4.0  # seconds of digital silence and of faint noise added as closed-mouth rows
    viseme_lines: int = 160  # synthetic training lines (half piper, half espeak-ng); 0: no viseme head
    viseme_test_lines: int = 40  # held-out synthetic lines (other texts and voice settings)
    viseme_head: HeadConfig = HeadConfig(hidden=128, epochs=15, dropout=0.3, input_dropout=0.1)
    seed: int = 0


def cache_root(cache_dir: str | None) -> pathlib.Path:
    base = cache_dir or os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "avatarlab" / "motion"


def _key(*parts) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _per_clip_cache(path: pathlib.Path, clips: list[ClipMotion], compute, desc: str) -> dict[str, np.ndarray]:
    """{clip id: array} kept in one npz: loaded, completed with `compute(clip)` for the missing clips
    (with progress), written back atomically."""
    cached = {}
    if path.exists():
        with np.load(path) as z:
            cached = {k: z[k] for k in z.files}
    todo = [c for c in clips if c.id not in cached]
    for c in tqdm(todo, desc=desc, unit="clip"):
        cached[c.id] = compute(c)
    if todo:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **cached)
        os.replace(tmp, path)
    return cached


def _dataset(dataset: str) -> tuple[pathlib.Path, str, dict]:
    """(root, the manifest as cache key, clips by id). The key leaves out the audio/video offsets
    (data/av_sync.py): they move targets, not the audio the cached features come from."""
    root = pathlib.Path(dataset)
    manifest = json.loads((root / "manifest.json").read_text())
    manifest.pop("av_sync", None)
    for c in manifest["clips"]:
        c.pop("av_sync", None)
        c.pop("av_offset_frames", None)
    return root, json.dumps(manifest, indent=1), {c["id"]: c for c in manifest["clips"]}


def _audio(root: pathlib.Path, entry: dict) -> np.ndarray:
    with np.load(root / entry["path"]) as z:
        return z["audio"]


def speed_up(audio: np.ndarray, speed: float) -> np.ndarray:
    """The audio played `speed` times as fast (pitch moves with it, as a shorter vocal tract would)."""
    from fractions import Fraction

    from scipy.signal import resample_poly

    f = Fraction(1 / speed).limit_denominator(20)
    return resample_poly(np.asarray(audio, np.float64), f.numerator, f.denominator).astype(np.float32)


def add_states(dataset: str, clips: list[ClipMotion], features: WhisperConfig, cache_dir: str | None = None,
               speeds: tuple[float, ...] = ()) -> None:
    """Encoder states of each clip's audio, and of the training clips' audio at each of `speeds`
    (cached: they cost most of a fresh run)."""
    from avatar_service.model.whisper import WhisperFeatures

    root, manifest_text, manifest = _dataset(dataset)
    for c in clips:
        c.audio = _audio(root, manifest[c.id])
    for speed in (1.0,) + tuple(speeds):
        path = cache_root(cache_dir) / f"states-{root.name}-{_key(manifest_text, dataclasses.asdict(features), speed)}.npz"
        wanted = clips if speed == 1.0 else [c for c in clips if c.split == "train"]
        def encode(c: ClipMotion, speed: float = speed) -> np.ndarray:
            audio = c.audio if speed == 1.0 else speed_up(c.audio, speed)
            return WhisperFeatures.shared(features, 16000, "cpu").all(audio)

        cached = _per_clip_cache(path, wanted, encode, "audio features" + (f" at {speed:g}x" if speed != 1.0 else ""))
        for c in wanted:
            if speed == 1.0:
                c.states = cached[c.id]
            else:
                c.sped[speed] = cached[c.id]


def sped_targets(targets: np.ndarray, speed: float) -> np.ndarray:
    """A clip's per-frame targets for its audio played `speed` times as fast (linear in time; NaN
    where a source frame is missing)."""
    n = int(len(targets) / speed)
    src = (np.arange(n) + 0.5) * speed - 0.5  # source frame position of each new frame
    lo = np.clip(np.floor(src).astype(int), 0, len(targets) - 1)
    hi = np.clip(lo + 1, 0, len(targets) - 1)
    w = (src - lo)[:, None]
    return (targets[lo] * (1 - w) + targets[hi] * w).astype(np.float32)


def add_windows(dataset: str, clips: list[ClipMotion], config: MotionPredictorConfig, cache_dir: str | None = None,
                speeds: tuple[float, ...] = ()) -> None:
    """Windows of every frame (what `MotionPredictor.predict` reads)."""
    add_states(dataset, clips, config.features, cache_dir, speeds)
    for c in clips:
        c.windows = clip_frame_windows(config, c.states, len(c.mesh))


def clip_frame_windows(config: MotionPredictorConfig, states: np.ndarray, n_frames: int, fps: float = 25.0) -> np.ndarray:
    """(T, 1, D, M) windows of a clip's frames from its states, as the served model reads them."""
    from avatar_service.model.whisper import WhisperFeatures  # its rate and silence value (class attributes)

    spec = config.window
    return spec.gather(states, 0, spec.mel_centres(np.arange(n_frames), fps, WhisperFeatures), WhisperFeatures)


def opening_direction(basis: MotionBasis, eps: float = 1e-3) -> np.ndarray:
    """(K,) mouth-opening change per unit of each coefficient in spread units, on the mean face: the
    direction the opening score reads (the score itself is measured on meshes)."""
    face = basis.template * 100.0  # any scale: the opening is relative to the inter-ocular distance
    k = basis.n_components
    base = mouth_opening(basis.target_mesh(face, np.zeros(k, np.float32)))
    return np.array([(mouth_opening(basis.target_mesh(face, np.eye(k, dtype=np.float32)[i] * basis.std[i] * eps)) - base)
                     / eps for i in range(k)], np.float32)


def predicted_meshes(basis: MotionBasis, clip: ClipMotion, pred: np.ndarray, ref: int) -> np.ndarray:
    """The clip's reference frame with its lower face moved to the predicted motion, per frame."""
    base = clip.coeffs[ref]
    closed = basis.closed_coefficients(clip.mesh[ref])
    return np.stack([basis.target_mesh(clip.mesh[ref], closed + p * basis.std - base) for p in pred])


def predicted_opening(basis: MotionBasis, clip: ClipMotion, pred: np.ndarray) -> np.ndarray:
    ref = int(np.flatnonzero(np.isfinite(clip.opening))[0])
    return np.array([mouth_opening(m) for m in predicted_meshes(basis, clip, pred, ref)])


def lip_distance(basis: MotionBasis, meshes: np.ndarray, real: np.ndarray) -> float:
    """Mean over frames of the mean 2D distance between matching lip vertices (outer and inner lips)
    in the canonical face frame (head pose removed; units of inter-ocular distance)."""
    lips = list(OUTER_LIP + INNER_LIP)
    d = [np.linalg.norm(basis.canonical(m)[0][lips, :2] - basis.canonical(r)[0][lips, :2], axis=1).mean()
         for m, r in zip(meshes, real)]
    return float(np.mean(d))


def score(basis: MotionBasis, predictor: MotionPredictor, clips: list[ClipMotion],
          features: dict[str, np.ndarray] | None = None, head=None) -> dict:
    """Held-out scores per clip, of the predicted geometry put on the clip's own first face: opening r
    against the measured opening, and lip distance (`lip_distance`) to the measured lips against the
    still first face's. Motion is gated by loudness as served. `features`/`head` score another head on
    the same (standardised) features."""
    out = {}
    for c in clips:
        ok = np.isfinite(c.opening)
        ref = int(np.flatnonzero(ok)[0])
        pred = head(features[c.id]) if head is not None else predictor.predict(c.windows)
        pred = pred * predictor.gate(c.audio, 0, len(pred), 25.0)[:, None]
        moved = predicted_meshes(basis, c, pred, ref)
        opening = np.array([mouth_opening(m) for m in moved])
        moving = np.std(c.opening[ok]) > 0 and np.std(opening[ok]) > 1e-6
        r = float(np.corrcoef(opening[ok], c.opening[ok])[0, 1]) if moving else float("nan")
        lmd = lip_distance(basis, moved[ok], c.mesh[ok])
        still = lip_distance(basis, np.repeat(c.mesh[ref][None], ok.sum(), 0), c.mesh[ok])
        out[c.id] = {"opening_r": r, "lip_distance": lmd, "still_lip_distance": still, "frames": int(ok.sum())}
    rs = [v["opening_r"] for v in out.values() if np.isfinite(v["opening_r"])]
    lmd = float(np.mean([v["lip_distance"] for v in out.values()]))
    still = float(np.mean([v["still_lip_distance"] for v in out.values()]))
    return {"mean_opening_r": float(np.mean(rs)) if rs else float("nan"), "lip_distance": lmd,
            "still_lip_distance": still, "lip_distance_vs_still": lmd / still, "clips": out}


def silence_states(features: WhisperConfig, seconds: float, seed: int = 0) -> list[np.ndarray]:
    """Encoder states of digital silence and of faint noise: both must read as a closed mouth."""
    from avatar_service.model.whisper import WhisperFeatures

    feat = WhisperFeatures.shared(features, 16000, "cpu")
    n = int(seconds * 16000)
    noise = (np.random.default_rng(seed).standard_normal(n) * 10 ** -3.5).astype(np.float32)
    return [feat.all(np.zeros(n, np.float32)), feat.all(noise)]


def aligned_targets(train: list[ClipMotion], feats: dict[str, np.ndarray], basis: MotionBasis, cfg: MotionTrainConfig,
                    report: dict) -> tuple[list[ClipMotion], dict[str, np.ndarray]]:
    """The training clips kept and their per-frame targets, realigned with their audio by each clip's
    estimated sync offset (`feats`: standardised window features per clip); offsets and dropped
    clips go into `report`."""
    targets = {c.id: c.targets(basis) for c in train}
    if not cfg.align:
        return train, targets
    offsets = sync_offsets([feats[c.id] for c in train], [targets[c.id] for c in train], [c.opening for c in train],
                           [c.identity for c in train], opening_direction(basis), max_lag=cfg.max_offset, ridge=cfg.ridge)
    report["sync"] = {c.id: {"offset_frames": d, "r": round(r, 3)} for c, (d, r) in zip(train, offsets)}
    kept = []
    for c, (d, r) in zip(train, offsets):
        if np.isfinite(r) and r >= cfg.min_sync_r:
            targets[c.id] = shift(targets[c.id], d)
            kept.append(c)
    report["dropped"] = sorted({c.id for c in train} - {c.id for c in kept})
    return kept, {c.id: targets[c.id] for c in kept}


def fit_predictor(clips: list[ClipMotion], basis: MotionBasis, cfg: MotionTrainConfig) -> tuple[MotionPredictor, dict]:
    """Projection, sync offsets and the motion head on the training clips. Returns the predictor and
    what was learnt about the data (offsets, dropped clips) and the linear probe, for the report."""
    pc = cfg.predictor
    train = [c for c in clips if c.split == "train"]
    proj, proj_mean = projection(np.concatenate([c.states for c in train]), pc.proj_dims)
    predictor = MotionPredictor(pc, proj, proj_mean, np.zeros(1, np.float32), np.ones(1, np.float32), Head([]))
    raw = {c.id: predictor.features(c.windows) for c in clips}
    silent = [predictor.features(clip_frame_windows(pc, s, int(len(s) / 2))) for s in silence_states(pc.features, cfg.silence_s)]
    xtr = np.concatenate([raw[c.id] for c in train])
    predictor.mu, predictor.sd = xtr.mean(0), xtr.std(0) + 1e-6
    feats = {k: (v - predictor.mu) / predictor.sd for k, v in raw.items()}
    silent = [(s - predictor.mu) / predictor.sd for s in silent]
    direction = opening_direction(basis)
    report: dict = {"opening_direction": direction.tolist()}
    train, targets = aligned_targets(train, feats, basis, cfg, report)
    pairs = [(feats[c.id], targets[c.id]) for c in train]
    for c in train:
        for speed, states in c.sped.items():
            y = sped_targets(targets[c.id], speed)
            x = (predictor.features(clip_frame_windows(pc, states, len(y))) - predictor.mu) / predictor.sd
            pairs.append((x, y))
    pairs += [(s, np.zeros((len(s), basis.n_components), np.float32)) for s in silent]
    x = np.concatenate([a[np.isfinite(b).all(1)] for a, b in pairs])
    y = np.concatenate([b[np.isfinite(b).all(1)] for a, b in pairs]).astype(np.float32)
    log.info("motion head: %d frames from %d clips at %d speeds (+%d silent)", len(x), len(train),
             1 + len(cfg.speeds), sum(map(len, silent)))
    probe = fit_ridge(x, y, cfg.ridge)
    predictor.motion = probe if cfg.head == "ridge" else fit_mlp(
        x, y, cfg.motion_head, weight_dir=direction, direction_weight=cfg.opening_weight, log=log.info)
    return predictor, {"report": report, "probe": probe, "features": feats, "targets": {c.id: targets[c.id] for c in train}}


def phone_baseline_scores(dataset: str, basis: MotionBasis, predictor: MotionPredictor, clips: list[ClipMotion],
                          targets: dict[str, np.ndarray], cache_dir: str | None) -> dict:
    """The phone-recognition baseline (evaluation/phone_baseline.py) fitted on the same realigned
    training targets, scored like the model."""
    from avatar_service.evaluation.phone_baseline import PhoneBaseline, _decoder, clip_visemes

    root, manifest_text, _ = _dataset(dataset)
    labels = _per_clip_cache(cache_root(cache_dir) / f"phones-{root.name}-{_key(manifest_text)}.npz", clips,
                             lambda c: clip_visemes(c.audio, len(c.mesh), 25.0, _decoder()), "pocketsphinx phones")
    base = PhoneBaseline.fit([labels[k] for k in targets], list(targets.values()))
    return score(basis, predictor, [c for c in clips if c.split == "val"], labels, base.predict)


# -- visemes --------------------------------------------------------------------------------------------
def synthetic_frames(n_lines: int, seed: int, features: WhisperConfig, cache_dir: str | None):
    """Synthetic lines (half piper, half espeak-ng) as encoder states and per-frame viseme labels,
    cached per (lines, seed, feature settings)."""
    from avatar_service.model.whisper import WhisperFeatures
    from avatar_service.speech import espeak, piper_backend
    from avatar_service.speech import visemes as viseme_table
    from avatar_service.training import synthetic_speech, visemes

    # the labels follow the voices' phoneme timings and the viseme table: their code is in the key
    code = [pathlib.Path(m.__file__).read_text() for m in (visemes, synthetic_speech, viseme_table, espeak, piper_backend)]
    path = cache_root(cache_dir) / f"synthetic-{n_lines}-{seed}-{_key(dataclasses.asdict(features), *code)}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            n = int(z["n"])
            return visemes.VisemeFrames([z[f"s{i}"] for i in range(n)], [z[f"l{i}"] for i in range(n)], list(z["voices"]))
    t0 = time.monotonic()
    lines = synthetic_speech.make_lines(n_lines - n_lines // 2, n_lines // 2, seed)
    rng = np.random.default_rng(seed + 1)
    lines = [visemes.pad_with_silence(line, rng) for line in lines]
    log.info("synthetic speech: %d lines, %.0f s of audio in %.0f s", len(lines), sum(l.seconds for l in lines),
             time.monotonic() - t0)
    out = visemes.frames(lines, WhisperFeatures.shared(features, 16000, "cpu"))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, n=len(lines), voices=np.array(out.voices), **{f"s{i}": s for i, s in enumerate(out.states)},
             **{f"l{i}": l for i, l in enumerate(out.labels)})
    os.replace(tmp, path)
    return out


def viseme_features(predictor: MotionPredictor, data) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xs = [predictor.features(clip_frame_windows(predictor.config, s, len(l))) for s, l in zip(data.states, data.labels)]
    engine = np.concatenate([np.full(len(l), v.split("/")[0]) for v, l in zip(data.voices, data.labels)])
    return np.concatenate(xs), np.concatenate(data.labels), engine


def fit_visemes(predictor: MotionPredictor, cfg: MotionTrainConfig, cache_dir: str | None) -> dict:
    """Train the viseme head on synthetic lines; score it on held-out lines (other texts, other seeds)."""
    from avatar_service.training import visemes

    pc = predictor.config
    train = synthetic_frames(cfg.viseme_lines, cfg.seed, pc.features, cache_dir)
    test = synthetic_frames(cfg.viseme_test_lines, cfg.seed + 1000, pc.features, cache_dir)
    x, y, _ = viseme_features(predictor, train)
    log.info("viseme head: %d frames of %d synthetic lines", len(x), len(train.labels))
    from avatar_service.speech.visemes import VISEMES

    predictor.visemes_head = fit_mlp(x, y, cfg.viseme_head, classes=len(VISEMES), log=log.info)
    xt, yt, engine = viseme_features(predictor, test)
    z = predictor.visemes_head(xt)
    pred = z.argmax(1)
    out = {"all": visemes.scores(yt, pred), "lines": {"train": len(train.labels), "test": len(test.labels)}}
    for e in sorted(set(engine)):
        out[e] = visemes.scores(yt[engine == e], pred[engine == e])
    return out


# -- plots --------------------------------------------------------------------------------------------
def plot_opening(basis: MotionBasis, clip: ClipMotion, pred: np.ndarray, gate: np.ndarray, path: str, label: str,
                 probe: np.ndarray | None = None, fps: float = 25.0) -> None:
    """Predicted vs measured mouth opening of one held-out clip (a plot only: no frames)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = np.isfinite(clip.opening)
    t = np.arange(len(clip.opening)) / fps
    fig, ax = plt.subplots(figsize=(10, 3.2))
    ax.plot(t, clip.opening, "k", lw=1.6, label="measured (face mesh)")
    gate = gate[:, None]  # as served
    for p, name, colour in ((pred, label, "tab:red"), (probe, "linear probe", "tab:blue")):
        if p is None:
            continue
        o = predicted_opening(basis, clip, p * gate)
        r = np.corrcoef(o[ok], clip.opening[ok])[0, 1]
        ax.plot(t, o, color=colour, lw=1.2, label=f"{name} (r {r:.2f})", alpha=0.9 if colour == "tab:red" else 0.6)
    ax.set_xlabel("seconds")
    ax.set_ylabel("inner-lip opening / inter-ocular")
    ax.set_title(f"held-out clip {clip.id}: mouth opening from speech vs measured", fontsize=9)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- the command -----------------------------------------------------------------------------------------
def fit(dataset: str, out: str, cfg: MotionTrainConfig = MotionTrainConfig(), cache_dir: str | None = None,
        plot_clip: str | None = None, compare_phones: bool = False, rig: bool = True) -> dict:
    t0 = time.monotonic()
    basis, clips = load_clips(dataset, n_components=cfg.components)
    add_windows(dataset, clips, cfg.predictor, cache_dir, cfg.speeds)
    predictor, fitted = fit_predictor(clips, basis, cfg)
    val = [c for c in clips if c.split == "val"]
    scores = score(basis, predictor, val)
    probe_scores = score(basis, predictor, val, fitted["features"], fitted["probe"])
    closed_scores = score(basis, predictor, val, fitted["features"],
                          lambda f: np.zeros((len(f), basis.n_components), np.float32))  # no speech at all
    result = {"dataset": str(dataset), "train_clips": sum(c.split == "train" for c in clips), "val_clips": len(val),
              "components": basis.n_components, "head": cfg.head,
              "lookahead_ms": round(1000 * predictor.lookahead_s(25.0)),
              "val": scores, "val_linear_probe": probe_scores, "val_closed_mouth": closed_scores,
              "data": fitted["report"]}
    if compare_phones:
        result["val_phone_recognition"] = phone_baseline_scores(dataset, basis, predictor, clips, fitted["targets"], cache_dir)
    out_dir = pathlib.Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    if cfg.viseme_lines:
        result["visemes"] = fit_visemes(predictor, cfg, cache_dir)
        from avatar_service.training.visemes import plot_confusion

        v = result["visemes"]["all"]
        plot_confusion(np.array(v["confusion"]), str(out_dir / "viseme_confusion.png"),
                       f"visemes on held-out synthetic speech: accuracy {v['accuracy']:.2f}, "
                       f"balanced {v['balanced_accuracy']:.2f}")
    # the plot shows a typical clip: of those 5 s or longer, the one whose r is nearest the mean
    typical = min([c for c in val if len(c.opening) >= 125] or val,
                  key=lambda c: abs(scores["clips"][c.id]["opening_r"] - scores["mean_opening_r"]))
    clip = next((c for c in val if c.id == plot_clip), typical)
    plot_opening(basis, clip, predictor.predict(clip.windows), predictor.gate(clip.audio, 0, len(clip.opening), 25.0),
                 str(out_dir / "motion_opening.png"),
                 "speech model" if cfg.head != "ridge" else "linear probe",
                 fitted["probe"](fitted["features"][clip.id]) if cfg.head != "ridge" else None)
    basis.save_pretrained(out_dir)
    predictor.save_pretrained(out_dir)
    if rig:  # the mouth rig's scales and viseme shapes belong to this basis and predictor
        from avatar_service.training.rig import fit as fit_rig

        result["rig"] = fit_rig(dataset, str(out_dir))
    result["seconds"] = round(time.monotonic() - t0, 1)
    (out_dir / "motion_scores.json").write_text(json.dumps(result, indent=2))
    log.info("motion: val opening r %.3f (linear probe %.3f) over %d clips, look-ahead %d ms",
             scores["mean_opening_r"], probe_scores["mean_opening_r"], len(val), result["lookahead_ms"])
    return result


def run(args) -> int:
    d = MotionTrainConfig()
    cfg = MotionTrainConfig(
        components=args.components, head=args.head, speeds=tuple(args.speeds), ridge=args.ridge, align=not args.no_align,
        predictor=dataclasses.replace(d.predictor, articulation=args.articulation),
        motion_head=dataclasses.replace(d.motion_head, hidden=args.hidden, epochs=args.epochs, seeds=args.seeds,
                                        first_seed=args.first_seed, threads=args.threads),
        viseme_lines=args.viseme_lines, viseme_test_lines=args.viseme_test_lines,
        viseme_head=dataclasses.replace(d.viseme_head, threads=args.threads))
    res = fit(args.data, args.out, cfg, args.cache_dir, args.plot_clip, args.compare_phones, not args.no_rig)
    summary = {k: v for k, v in res.items() if not k.startswith("val") and k not in ("data", "visemes", "rig")}
    summary |= {"val_opening_r": res["val"]["mean_opening_r"], "val_opening_r_linear_probe": res["val_linear_probe"]["mean_opening_r"],
                "val_lip_distance_vs_still": res["val"]["lip_distance_vs_still"],
                "val_lip_distance_vs_still_closed_mouth": res["val_closed_mouth"]["lip_distance_vs_still"]}
    if "val_phone_recognition" in res:
        summary["val_opening_r_phone_recognition"] = res["val_phone_recognition"]["mean_opening_r"]
    if "visemes" in res:
        summary |= {"viseme_accuracy": res["visemes"]["all"]["accuracy"],
                    "viseme_balanced_accuracy": res["visemes"]["all"]["balanced_accuracy"]}
    print(json.dumps(summary))
    return 0


def register(stages) -> None:
    d = MotionTrainConfig()
    s = stages.add_parser("motion", help="lower-face motion basis + speech -> motion and viseme model (minutes on a CPU)")
    s.add_argument("--data", required=True, help="dataset folder with manifest.json (avatarlab prepare)")
    s.add_argument("--out", required=True, help="folder for motion_basis.*, motion_predictor.*, scores and plots")
    s.add_argument("--components", type=int, default=d.components)
    s.add_argument("--head", choices=("mlp", "ridge"), default=d.head, help="motion head: small MLP, or the linear probe")
    s.add_argument("--hidden", type=int, default=d.motion_head.hidden, help="MLP hidden units per ensemble member")
    s.add_argument("--epochs", type=int, default=d.motion_head.epochs)
    s.add_argument("--seeds", type=int, default=d.motion_head.seeds, help="ensemble members (averaged into one head)")
    s.add_argument("--first-seed", type=int, default=d.motion_head.first_seed,
                   help="torch seed of the first member (another value: another draw, to measure seed noise)")
    s.add_argument("--ridge", type=float, default=d.ridge, help="linear probe penalty (per sample)")
    s.add_argument("--articulation", type=float, default=d.predictor.articulation)
    s.add_argument("--speeds", type=float, nargs="*", default=list(d.speeds),
                   help="speed perturbation of the training clips (none: --speeds)")
    s.add_argument("--no-align", action="store_true", help="keep training clips' targets as recorded (no sync offsets)")
    s.add_argument("--viseme-lines", type=int, default=d.viseme_lines, help="synthetic training lines (0: no viseme head)")
    s.add_argument("--viseme-test-lines", type=int, default=d.viseme_test_lines)
    s.add_argument("--threads", type=int, default=d.motion_head.threads, help="torch threads")
    s.add_argument("--cache-dir", default=None, help="where encoder states are cached (default ~/.cache/avatarlab/motion)")
    s.add_argument("--compare-phones", action="store_true",
                   help="also score the phone-recognition baseline (pocketsphinx phones -> visemes -> mean motion)")
    s.add_argument("--no-rig", action="store_true", help="skip the mouth rig (mouth_rig.json; `avatarlab train rig` fits it alone)")
    s.add_argument("--plot-clip", default=None, help="val clip for motion_opening.png (default: a typical one, r nearest the mean)")
    s.set_defaults(func=run)
