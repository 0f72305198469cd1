"""The viseme head's data and scores: synthetic lines (training/synthetic_speech.py) become per-frame
windows of encoder states with the viseme at each frame's centre (speech/visemes.py) as the label;
held-out lines give per-viseme accuracy and a confusion matrix."""
from __future__ import annotations

import dataclasses

import numpy as np

from avatar_service.speech.visemes import SIL, VISEMES, frame_labels, viseme_segments
from avatar_service.training.synthetic_speech import SAMPLE_RATE, SyntheticLine


@dataclasses.dataclass
class VisemeFrames:
    states: list[np.ndarray]  # per line (S, D) encoder states
    labels: list[np.ndarray]  # per line (T,) viseme index per video frame
    voices: list[str]


def pad_with_silence(line: SyntheticLine, rng: np.random.Generator, max_s: float = 0.6) -> SyntheticLine:
    """Quiet room noise before and after the line (so pauses and digital silence both read `sil`)."""
    before, after = (int(rng.uniform(0.1, max_s) * SAMPLE_RATE) for _ in range(2))
    noise = 10 ** rng.uniform(-4.5, -2.5)
    audio = np.concatenate([np.zeros(before, np.float32), line.audio, np.zeros(after, np.float32)])
    audio = audio + (noise * rng.standard_normal(len(audio))).astype(np.float32)
    t0 = before / SAMPLE_RATE
    return SyntheticLine(line.text, line.voice, audio, [(p, s + t0, e + t0) for p, s, e in line.phonemes])


def frames(lines: list[SyntheticLine], feat, fps: float = 25.0) -> VisemeFrames:
    """Encoder states and per-frame labels of each line."""
    states, labels = [], []
    for line in lines:
        n = int(len(line.audio) / SAMPLE_RATE * fps)
        states.append(feat.all(line.audio))
        labels.append(frame_labels(viseme_segments(line.phonemes), n, fps))
    return VisemeFrames(states, labels, [line.voice for line in lines])


def confusion(truth: np.ndarray, pred: np.ndarray, n: int = len(VISEMES)) -> np.ndarray:
    """(n, n) counts: row = true viseme, column = predicted."""
    m = np.zeros((n, n), np.int64)
    np.add.at(m, (truth, pred), 1)
    return m


def scores(truth: np.ndarray, pred: np.ndarray) -> dict:
    m = confusion(truth, pred)
    per = {v: (float(m[i, i] / m[i].sum()) if m[i].sum() else float("nan")) for i, v in enumerate(VISEMES)}
    speech = truth != SIL
    return {"accuracy": float((truth == pred).mean()), "accuracy_speech": float((truth[speech] == pred[speech]).mean()),
            "balanced_accuracy": float(np.nanmean(list(per.values()))), "per_viseme": per,
            "support": {v: int(m[i].sum()) for i, v in enumerate(VISEMES)}, "confusion": m.tolist(),
            "frames": int(len(truth))}


def plot_confusion(matrix: np.ndarray, path: str, title: str) -> None:
    """Row-normalised confusion matrix as a PNG (rows: true viseme, columns: predicted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = np.asarray(matrix, np.float64)
    norm = m / np.maximum(1, m.sum(1, keepdims=True))
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(VISEMES)), VISEMES, rotation=60)
    ax.set_yticks(range(len(VISEMES)), VISEMES)
    for i in range(len(VISEMES)):
        for j in range(len(VISEMES)):
            if norm[i, j] >= 0.05:
                ax.text(j, i, f"{norm[i, j]:.2f}"[1:] if norm[i, j] < 1 else "1", ha="center", va="center",
                        fontsize=6, color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true (exact phoneme timing)")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
