"""`avatarlab train motion-student`: the log-mel student (model/motion_student.py) distilled from the
Whisper-based motion model (the teacher), on a CPU in minutes.

Audio (the teacher labels any audio, so the student sees more than the teacher was fitted on):
- the dataset's train-split clips at speeds 1, 0.9 and 1.1 (the val split's audio never: it scores);
- `--speech` folders of speech files (default ../shared/data/speech when present);
- synthetic piper and espeak-ng lines (training/synthetic_speech.py), padded with room noise;
- digital silence and faint noise.
Targets, per sample:
- the teacher's motion and viseme logits at 50 frames a second (distillation: MSE on the motion, plus
  the mouth-opening direction as `avatarlab train motion` weighs it; cross-entropy against the teacher's
  viseme distribution);
- the measured motion of the train clips (realigned by their sync offsets, training/motion.py) and the
  exact viseme labels of the synthetic lines, at 25 frames a second, weighted by `hard_weight`.
Scores, side by side with the teacher: `training/motion.py score` on the val clips (mouth-opening r and
lip distance against the still mouth) and viseme accuracy on held-out synthetic lines (other texts and
voices, as the teacher's are scored), written to motion_student_scores.json.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import pathlib
import shutil
import time

import numpy as np
from tqdm import tqdm

from avatar_service.model.features import log_mel, silence_value
from avatar_service.model.motion import MotionPredictor
from avatar_service.model.motion_student import MotionStudent, StudentConfig
from avatar_service.training.motion import (MotionTrainConfig, _key, add_states, aligned_targets, cache_root,
                                            clip_frame_windows, opening_direction, score, sped_targets, speed_up)

log = logging.getLogger(__name__)
SPEECH_SUFFIXES = (".wav", ".m4a", ".mp3", ".flac", ".ogg")


@dataclasses.dataclass(frozen=True)
class StudentTrainConfig:
    student: StudentConfig = StudentConfig(blend=0.4)  # 0.4: tools/student_blend_cv.py (docs/speech_to_motion.md)
    speeds: tuple[float, ...] = (0.9, 1.1)  # of the train clips, as the teacher was fitted
    synthetic_lines: int = 240  # half piper, half espeak-ng
    test_lines: int = 40  # held-out synthetic lines (seed + 1000, as the teacher's)
    silence_s: float = 4.0
    distill_fps: float = 50.0  # teacher targets: one per encoder state
    hard_weight: float = 0.5  # measured motion and exact viseme labels, against the teacher's targets
    viseme_weight: float = 1.0
    opening_weight: float = 1.0  # extra loss along the mouth-opening direction (as the teacher)
    epochs: int = 24
    batch: int = 256
    lr: float = 2e-3
    weight_decay: float = 0.01
    dropout: float = 0.1
    # Whisper normalises each window by its loudest frame, so the teacher hears level and channel
    # differences little; the student reads absolute log-mel and learns that invariance from these:
    # a random gain and spectral tilt per sample (in the log-mel domain, above the floor)
    gain_db: float = 20.0  # +-
    tilt_db: float = 6.0  # +- at the band edges
    seed: int = 0
    threads: int = 1


@dataclasses.dataclass
class Utterance:
    """One audio signal's mel rows and its samples: (mel row of the frame's centre, targets)."""
    name: str
    mel: np.ndarray  # (R, B) mel frames [-past, ...) of the signal
    rows: list[np.ndarray] = dataclasses.field(default_factory=list)  # per target set: (N,) centre rows
    motion: list[np.ndarray] = dataclasses.field(default_factory=list)  # (N, K) or NaN
    logits: list[np.ndarray] = dataclasses.field(default_factory=list)  # (N, V) teacher logits or NaN
    labels: list[np.ndarray] = dataclasses.field(default_factory=list)  # (N,) viseme index or -1
    hard: list[bool] = dataclasses.field(default_factory=list)


class Data:
    """Everything the student trains on, as one mel array and per-sample targets."""

    def __init__(self, student: MotionStudent, teacher: MotionPredictor, cfg: StudentTrainConfig):
        self.student, self.teacher, self.cfg = student, teacher, cfg
        self.utterances: list[Utterance] = []

    def teacher_outputs(self, states: np.ndarray, n: int, fps: float) -> tuple[np.ndarray, np.ndarray]:
        w = clip_frame_windows(self.teacher.config, states, n, fps)
        f = self.teacher.features(w)
        return self.teacher.motion(f), self.teacher.visemes_head(f)

    def add(self, name: str, audio: np.ndarray, states: np.ndarray, motion: np.ndarray | None = None,
            labels: np.ndarray | None = None, fps: float = 25.0) -> None:
        """A signal with its teacher states; optional measured motion or viseme labels at `fps`."""
        c = self.cfg
        n_d = int(len(states) / 50.0 * c.distill_fps)  # states cover the audio up to their last block
        n_d = min(n_d, int(len(audio) / 16000 * c.distill_fps))
        n_h = 0 if motion is None and labels is None else len(motion if motion is not None else labels)
        w = self.student.config.window
        # mel rows from the first window's start (-past) to the last window's end; rows are centres + past
        rows_d = self.student.mel_centres(np.arange(n_d), c.distill_fps) + w.past
        rows_h = self.student.mel_centres(np.arange(n_h), fps) + w.past
        end = max([int(r.max()) for r in (rows_d, rows_h) if len(r)] + [0]) + w.mel_radius + 1
        u = Utterance(name, log_mel(audio, self.student.config.mel, -w.past, end))
        tm, tl = self.teacher_outputs(states, n_d, c.distill_fps)
        k, v = self.student.config.n_components, self.student.config.n_visemes
        u.rows.append(rows_d), u.motion.append(tm), u.logits.append(tl), u.labels.append(np.full(n_d, -1)), u.hard.append(False)
        if n_h:
            u.rows.append(rows_h)
            u.motion.append(motion if motion is not None else np.full((n_h, k), np.nan, np.float32))
            u.logits.append(np.full((n_h, v), np.nan, np.float32))
            u.labels.append(labels if labels is not None else np.full(n_h, -1))
            u.hard.append(True)
        self.utterances.append(u)

    def arrays(self) -> dict[str, np.ndarray]:
        """One mel array (utterances end to end) and the sample table into it."""
        mel, base, out = [], 0, {k: [] for k in ("rows", "motion", "logits", "labels", "hard")}
        for u in self.utterances:
            for r, m, l, lab, h in zip(u.rows, u.motion, u.logits, u.labels, u.hard):
                out["rows"].append(r + base)
                out["motion"].append(m.astype(np.float32))
                out["logits"].append(l.astype(np.float32))
                out["labels"].append(np.asarray(lab, np.int64))
                out["hard"].append(np.full(len(r), h))
            mel.append(u.mel)
            base += len(u.mel)
        res = {k: np.concatenate(v) for k, v in out.items()}
        res["mel"] = np.concatenate(mel).astype(np.float32)
        return res


# -- audio sources ----------------------------------------------------------------------------------
def _cached_npz(path: pathlib.Path, compute) -> dict[str, np.ndarray]:
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    out = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **out)
    os.replace(tmp, path)
    return out


def synthetic_lines(n_lines: int, seed: int, teacher: MotionPredictor, cache_dir: str | None) -> list[dict]:
    """Synthetic lines (training/motion.py's recipe: half piper, half espeak-ng, padded with room noise)
    as audio, per-frame viseme labels at 25 fps and teacher states; cached."""
    from avatar_service.speech.visemes import frame_labels, viseme_segments
    from avatar_service.training import synthetic_speech, visemes

    feat = teacher.feature_extractor()
    key = _key(dataclasses.asdict(teacher.config.features), visemes.__doc__, synthetic_speech.__doc__)

    def compute() -> dict[str, np.ndarray]:
        lines = synthetic_speech.make_lines(n_lines - n_lines // 2, n_lines // 2, seed)
        rng = np.random.default_rng(seed + 1)
        out: dict[str, np.ndarray] = {"n": np.array(len(lines))}
        for i, line in enumerate(tqdm(lines, desc="synthetic lines: teacher states", unit="line")):
            line = visemes.pad_with_silence(line, rng)
            out[f"a{i}"] = line.audio
            out[f"l{i}"] = frame_labels(viseme_segments(line.phonemes), int(len(line.audio) / 16000 * 25), 25.0)
            out[f"s{i}"] = feat.all(line.audio)
        return out

    log.info("synthetic speech: %d lines (seed %d)", n_lines, seed)
    z = _cached_npz(cache_root(cache_dir) / f"student-synthetic-{n_lines}-{seed}-{key}.npz", compute)
    return [{"audio": z[f"a{i}"], "labels": z[f"l{i}"], "states": z[f"s{i}"]} for i in range(int(z["n"]))]


def speech_files(folders: list[str]) -> list[pathlib.Path]:
    files = []
    for f in folders:
        p = pathlib.Path(f)
        files += sorted(x for x in p.iterdir() if x.suffix.lower() in SPEECH_SUFFIXES) if p.is_dir() else [p]
    return files


def speech_states(files: list[pathlib.Path], teacher: MotionPredictor, cache_dir: str | None) -> list[dict]:
    from avatar_service.media import read_audio

    feat = teacher.feature_extractor()
    out = []
    for f in tqdm(files, desc="speech files: teacher states", unit="file"):
        audio = read_audio(f, 16000).astype(np.float32)
        key = _key(str(f.resolve()), f.stat().st_size, dataclasses.asdict(teacher.config.features))
        z = _cached_npz(cache_root(cache_dir) / f"student-speech-{key}.npz", lambda: {"s": feat.all(audio)})
        out.append({"name": f.name, "audio": audio, "states": z["s"]})
    return out


# -- training -----------------------------------------------------------------------------------------
def train(student: MotionStudent, arrays: dict[str, np.ndarray], direction: np.ndarray, cfg: StudentTrainConfig,
          steps: int | None = None, progress: bool = True) -> dict:
    """Fit the student's weights in place (torch, CPU); `steps` caps the optimiser steps (tests)."""
    import torch

    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    sc = student.config
    mel = torch.tensor(arrays["mel"])
    student.mu = arrays["mel"].mean(0).astype(np.float32)
    student.sd = (arrays["mel"].std(0) + 1e-3).astype(np.float32)
    mu, sd = torch.tensor(student.mu), torch.tensor(student.sd)
    floor = float(silence_value(sc.mel))  # log_mel's units: 25 dB of power per unit
    bands = torch.linspace(-1.0, 1.0, sc.mel.n_mels)
    rows = torch.tensor(arrays["rows"])
    motion, logits = torch.tensor(arrays["motion"]), torch.tensor(arrays["logits"])
    labels, hard = torch.tensor(arrays["labels"]), torch.tensor(arrays["hard"])
    offsets = torch.tensor(sc.window.offsets)
    g = torch.tensor(direction / np.linalg.norm(direction), dtype=torch.float32)

    dims = [sc.frames * sc.frame_dims, *sc.hidden, sc.n_components + sc.n_visemes]
    layers: list = []
    for a, b in zip(dims[:-1], dims[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.GELU(approximate="tanh"), torch.nn.Dropout(cfg.dropout)]
    frame = torch.nn.Linear(sc.mel.n_mels, sc.frame_dims)
    trunk = torch.nn.Sequential(*layers[:-2])
    params = list(frame.parameters()) + list(trunk.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    per_epoch = max(1, len(rows) // cfg.batch)
    total = min(steps, cfg.epochs * per_epoch) if steps else cfg.epochs * per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=total)
    k = sc.n_components
    history, step, t0 = [], 0, time.monotonic()

    def forward(idx):
        x = mel[rows[idx, None] + offsets[None, :]]  # (N, T, B)
        n = len(idx)
        shift = (torch.rand(n, 1, 1) * 2 - 1) * cfg.gain_db / 25 + (torch.rand(n, 1, 1) * 2 - 1) * cfg.tilt_db / 25 * bands
        x = torch.where(x > floor + 1e-4, torch.clamp(x + shift, min=floor), x)  # digital silence stays silent
        h = torch.nn.functional.gelu(frame((x - mu) / sd), approximate="tanh")
        return trunk(h.reshape(len(idx), -1))

    bar = tqdm(total=total, desc="student", unit="step", disable=not progress)
    while step < total:
        perm = torch.randperm(len(rows))
        sums = np.zeros(4)
        for b in range(per_epoch):
            if step >= total:
                break
            idx = perm[b * cfg.batch:(b + 1) * cfg.batch]
            y = forward(idx)
            m_pred, v_pred = y[:, :k], y[:, k:]
            m_true, l_true, lab, h = motion[idx], logits[idx], labels[idx], hard[idx]
            w = torch.where(h, cfg.hard_weight, 1.0)
            has_m = torch.isfinite(m_true).all(1)
            e = torch.where(has_m[:, None], m_pred - torch.nan_to_num(m_true), 0.0)
            loss_m = ((e ** 2).mean(1) + cfg.opening_weight * (e @ g) ** 2) * w * has_m
            logp = torch.log_softmax(v_pred, 1)
            has_l = torch.isfinite(l_true).all(1)
            soft = torch.softmax(torch.nan_to_num(l_true), 1)
            loss_t = -(soft * logp).sum(1) * has_l
            has_lab = lab >= 0
            loss_h = -logp.gather(1, lab.clamp(min=0)[:, None])[:, 0] * has_lab * cfg.hard_weight
            loss = (loss_m.sum() + cfg.viseme_weight * (loss_t.sum() + loss_h.sum())) / len(idx)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            bar.update(1)
            sums += [loss.item(), loss_m.sum().item() / len(idx), loss_t.sum().item() / len(idx), 1]
        history.append({"step": step, "loss": sums[0] / max(1, sums[3]), "motion": sums[1] / max(1, sums[3]),
                        "visemes": sums[2] / max(1, sums[3])})
        bar.set_postfix(loss=f"{history[-1]['loss']:.3f}")
        log.info("student: step %d/%d loss %.4f (motion %.4f, teacher visemes %.4f) %.0f s", step, total,
                 history[-1]["loss"], history[-1]["motion"], history[-1]["visemes"], time.monotonic() - t0)
    bar.close()
    student.frame.layers = [(frame.weight.detach().numpy().T.copy(), frame.bias.detach().numpy().copy())]
    lin = [m for m in trunk if isinstance(m, torch.nn.Linear)]
    student.trunk.layers = [(m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy()) for m in lin]
    return {"steps": step, "history": history, "seconds": round(time.monotonic() - t0, 1)}


# -- scores -------------------------------------------------------------------------------------------
def viseme_scores(student: MotionStudent, teacher: MotionPredictor, lines: list[dict]) -> dict:
    """Frame accuracy of both on held-out synthetic lines (exact labels)."""
    from avatar_service.training.visemes import scores

    truth = np.concatenate([l["labels"] for l in lines])
    t = np.concatenate([teacher.visemes_head(teacher.features(clip_frame_windows(teacher.config, l["states"], len(l["labels"]))))
                        .argmax(1) for l in lines])
    s = np.concatenate([student.outputs(student.clip_windows(l["audio"], len(l["labels"]), 25.0))[1].argmax(1)
                        for l in lines])
    return {"teacher": scores(truth, t), "student": scores(truth, s)}


def motion_scores(basis, student: MotionStudent, teacher: MotionPredictor, val: list) -> dict:
    """training/motion.py `score` of the teacher and of the student on the val clips (both gated as served)."""
    for c in val:
        c.windows = clip_frame_windows(teacher.config, c.states, len(c.mesh))
    windows = {c.id: student.clip_windows(c.audio, len(c.mesh), 25.0) for c in val}
    out = {"teacher": score(basis, teacher, val), "student": score(basis, teacher, val, windows, student.predict)}
    if student.config.blend > 0:  # what image sessions serve (runtime/warp_renderer.py MotionModel)
        w = student.config.blend
        both = {c.id: (c.windows, windows[c.id]) for c in val}
        out["blend"] = score(basis, teacher, val, both,
                             lambda tw: (1 - w) * teacher.predict(tw[0]) + w * student.predict(tw[1]))
    return out


def _summary(s: dict) -> dict:
    return {"opening_r": round(s["mean_opening_r"], 4), "lip_distance_vs_still": round(s["lip_distance_vs_still"], 4)}


# -- the command -----------------------------------------------------------------------------------------
def fit(dataset: str, teacher_dir: str, out: str, cfg: StudentTrainConfig = StudentTrainConfig(),
        speech: list[str] | None = None, cache_dir: str | None = None) -> dict:
    from avatar_service.data.motion_clips import load_clips
    from avatar_service.face.motion import MotionBasis

    t0 = time.monotonic()
    teacher = MotionPredictor.from_pretrained(teacher_dir)
    if teacher.visemes_head is None:
        raise ValueError(f"{teacher_dir}: the teacher has no viseme head (retrain it with `avatarlab train motion`)")
    basis = MotionBasis.from_pretrained(teacher_dir)
    student = MotionStudent.init(dataclasses.replace(cfg.student, n_components=teacher.n_components,
                                                     articulation=teacher.config.articulation, gate=teacher.config.gate),
                                 cfg.seed)
    _, clips = load_clips(dataset, basis=basis)
    add_states(dataset, clips, teacher.config.features, cache_dir, cfg.speeds)
    train_clips = [c for c in clips if c.split == "train"]
    val = [c for c in clips if c.split == "val"]
    data = Data(student, teacher, cfg)
    # the measured motion, realigned as the teacher's was (the same sync offsets from the teacher's features)
    feats = {c.id: teacher.features(clip_frame_windows(teacher.config, c.states, len(c.mesh))) for c in train_clips}
    report: dict = {}
    kept, targets = aligned_targets(train_clips, feats, basis, MotionTrainConfig(), report)
    kept_ids = {c.id for c in kept}
    for c in tqdm(train_clips, desc="train clips", unit="clip"):
        y = targets.get(c.id)
        data.add(c.id, c.audio, c.states, y)
        for speed, states in c.sped.items():
            data.add(f"{c.id}@{speed:g}", speed_up(c.audio, speed), states,
                     sped_targets(y, speed) if c.id in kept_ids else None)
    for s in speech_states(speech_files(speech or []), teacher, cache_dir):
        data.add(s["name"], s["audio"], s["states"])
    n = int(cfg.silence_s * 16000)
    quiet = (np.random.default_rng(cfg.seed).standard_normal(n) * 10 ** -3.5).astype(np.float32)
    for name, audio in (("silence", np.zeros(n, np.float32)), ("faint noise", quiet)):
        data.add(name, audio, teacher.feature_extractor().all(audio))
    if cfg.synthetic_lines:
        for i, line in enumerate(synthetic_lines(cfg.synthetic_lines, cfg.seed, teacher, cache_dir)):
            data.add(f"synthetic {i}", line["audio"], line["states"], labels=line["labels"])
    arrays = data.arrays()
    seconds = {"clips": sum(len(u.mel) for u in data.utterances if not u.name.startswith(("synthetic", "silence", "faint")))
               / 100, "all": len(arrays["mel"]) / 100}
    log.info("student data: %.0f s of audio (%.0f s from clips and speech files), %d samples",
             seconds["all"], seconds["clips"], len(arrays["rows"]))
    fitted = train(student, arrays, opening_direction(basis), cfg)
    result = {"dataset": str(dataset), "teacher": str(teacher_dir), "audio_seconds": round(seconds["all"]),
              "samples": int(len(arrays["rows"])), "train": fitted,
              "config": student.config.to_json(), "parameters": int(sum(w.size + b.size for w, b in student.frame.layers + student.trunk.layers)),
              "lookahead_ms": {f"{fps}fps": round(1000 * student.lookahead_s(fps), 1) for fps in (25, 30, 60)},
              "teacher_lookahead_ms": round(1000 * teacher.lookahead_s(25.0))}
    result["val"] = motion_scores(basis, student, teacher, val)
    test = synthetic_lines(cfg.test_lines, cfg.seed + 1000, teacher, cache_dir) if cfg.test_lines else []
    if test:
        result["visemes"] = viseme_scores(student, teacher, test)
    result["summary"] = {who: _summary(result["val"][who]) | (
        {"viseme_accuracy": round(result["visemes"][who]["accuracy"], 4)} if test and who in result["visemes"] else {})
        for who in result["val"]}
    out_dir = pathlib.Path(out)
    _copy_teacher(pathlib.Path(teacher_dir), out_dir)
    student.save_pretrained(out_dir, {"scores": result["summary"]})
    result["seconds"] = round(time.monotonic() - t0, 1)
    (out_dir / "motion_student_scores.json").write_text(json.dumps(result, indent=2))
    return result


def _copy_teacher(teacher: pathlib.Path, out: pathlib.Path) -> None:
    """The student serves beside the teacher's basis and rig: --out gets the whole motion model."""
    out.mkdir(parents=True, exist_ok=True)
    if out.resolve() == teacher.resolve():
        return
    for f in teacher.iterdir():
        if f.is_file() and f.name.startswith(("motion_basis", "motion_predictor", "mouth_rig")):
            shutil.copy2(f, out / f.name)


def run(args) -> int:
    d = StudentTrainConfig()
    cfg = dataclasses.replace(d, epochs=args.epochs, synthetic_lines=args.synthetic_lines, test_lines=args.test_lines,
                              threads=args.threads, hard_weight=args.hard_weight, gain_db=args.gain_db,
                              student=dataclasses.replace(d.student, mel=dataclasses.replace(d.student.mel, n_mels=args.mels),
                                                          window=dataclasses.replace(d.student.window, past=args.past),
                                                          frame_dims=args.frame_dims, hidden=tuple(args.hidden)))
    from avatar_service.runtime.warp_renderer import EMBEDDED_MOTION

    speech = args.speech if args.speech is not None else [p for p in [default_speech()] if p]
    res = fit(args.data, args.teacher or str(EMBEDDED_MOTION), args.out, cfg, speech, args.cache_dir)
    print(json.dumps({"summary": res["summary"], "lookahead_ms": res["lookahead_ms"], "parameters": res["parameters"],
                      "audio_seconds": res["audio_seconds"], "seconds": res["seconds"]}))
    return 0


def default_speech() -> str | None:
    """../shared/data/speech (AVATARLAB_DATA or beside the checkout), when present."""
    root = os.environ.get("AVATARLAB_DATA") or str(pathlib.Path(__file__).resolve().parents[3] / "shared" / "data")
    p = pathlib.Path(root) / "speech"
    return str(p) if p.is_dir() else None


def register(stages) -> None:
    d = StudentTrainConfig()
    s = stages.add_parser("motion-student", help="log-mel mouth front end distilled from the Whisper motion model (minutes on a CPU)")
    s.add_argument("--data", required=True, help="dataset folder with manifest.json (avatarlab prepare); val clips only score")
    s.add_argument("--teacher", default=None, help="motion model folder (default: the embedded one)")
    s.add_argument("--out", required=True, help="motion model folder to write (the teacher's files are copied beside the student)")
    s.add_argument("--speech", nargs="*", default=None, help="more speech (files or folders; default ../shared/data/speech)")
    s.add_argument("--synthetic-lines", type=int, default=d.synthetic_lines)
    s.add_argument("--test-lines", type=int, default=d.test_lines)
    s.add_argument("--epochs", type=int, default=d.epochs)
    s.add_argument("--mels", type=int, default=d.student.mel.n_mels, help="mel bands")
    s.add_argument("--frame-dims", type=int, default=d.student.frame_dims)
    s.add_argument("--hidden", type=int, nargs="+", default=list(d.student.hidden))
    s.add_argument("--past", type=int, default=d.student.window.past, help="mel frames (10 ms) of past context")
    s.add_argument("--gain-db", type=float, default=d.gain_db, help="random gain augmentation, +- dB")
    s.add_argument("--hard-weight", type=float, default=d.hard_weight, help="measured motion and exact viseme labels vs the teacher")
    s.add_argument("--threads", type=int, default=d.threads, help="torch threads")
    s.add_argument("--cache-dir", default=None, help="where teacher states are cached (default ~/.cache/avatarlab/motion)")
    s.set_defaults(func=run)
