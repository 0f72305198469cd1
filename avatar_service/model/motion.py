"""Speech -> mouth motion: the lower-face motion coefficients (face/motion.py) of each video frame,
predicted from the Whisper-tiny encoder states the service already computes.

A linear model (ridge on standardised features) over the states within +-`window.mel_radius` feature
frames (+-120 ms at 50 Hz) of each frame's centre, after a PCA projection of the 384 encoder dims. Its
target is the frame's coefficients relative to that person's closed mouth, in units of each
component's spread, so silence predicts ~0 (closed) for anyone. `articulation` scales the prediction at
serving: regression pulls towards the average mouth (as in the generator's lip head).
"""
from __future__ import annotations

import dataclasses
import json
import pathlib

import numpy as np

from avatar_service.model.features import WindowSpec

CONFIG_NAME, WEIGHTS_NAME = "motion_predictor.json", "motion_predictor.safetensors"


def loudness_gate(audio: np.ndarray, start: int, stop: int, fps: float, sample_rate_hz: int = 16000,
                  floor_db: float = -65.0, full_db: float = -50.0, radius_s: float = 0.06) -> np.ndarray:
    """(stop - start,) in [0, 1] per video frame: 0 where the audio around the frame (+-radius) is below
    `floor_db` dBFS, 1 above `full_db`. Motion is scaled by it, so the mouth closes on silence whatever
    the model reads into it (regression answers silence with the average mouth). Low thresholds: on the
    11 held-out clips -50/-35 dBFS cost mouth-open r 0.13 (quiet recordings), -65/-50 costs 0.06."""
    audio = np.asarray(audio, np.float32)
    centres = ((np.arange(start, stop) + 0.5) / fps * sample_rate_hz).astype(np.int64)
    r = int(radius_s * sample_rate_hz)
    out = np.zeros(len(centres), np.float32)
    for k, c in enumerate(centres):
        seg = audio[max(0, c - r):min(len(audio), c + r)]
        db = 10 * np.log10(float(np.mean(seg.astype(np.float64) ** 2)) + 1e-12) if len(seg) else -120.0
        out[k] = np.clip((db - floor_db) / (full_db - floor_db), 0.0, 1.0)
    return out


@dataclasses.dataclass(frozen=True)
class MotionPredictorConfig:
    window: WindowSpec = WindowSpec(mel_radius=6, neighbour_radius=0)
    proj_dims: int = 64  # PCA of the encoder states before windowing
    ridge: float = 30.0  # per-sample penalty on standardised features
    articulation: float = 1.3


@dataclasses.dataclass
class MotionPredictor:
    config: MotionPredictorConfig
    proj: np.ndarray  # (D, P) encoder dims -> projected dims
    proj_mean: np.ndarray  # (D,)
    mu: np.ndarray  # (F,) feature mean
    sd: np.ndarray  # (F,) feature spread
    weights: np.ndarray  # (F + 1, K) bias last

    @property
    def n_components(self) -> int:
        return self.weights.shape[1]

    def features(self, windows: np.ndarray) -> np.ndarray:
        """(N, 1, D, M) windows (WindowSpec.gather layout) -> (N, F)."""
        w = np.asarray(windows, np.float32)[:, 0].transpose(0, 2, 1)  # (N, M, D)
        return ((w - self.proj_mean) @ self.proj).reshape(len(w), -1)

    def predict(self, windows: np.ndarray, articulation: float | None = None) -> np.ndarray:
        """(N, K) motion coefficients about the closed mouth, in units of each component's spread."""
        x = (self.features(windows) - self.mu) / self.sd
        y = x @ self.weights[:-1] + self.weights[-1]
        return (y * (self.config.articulation if articulation is None else articulation)).astype(np.float32)

    @classmethod
    def fit(cls, windows: list[np.ndarray], targets: list[np.ndarray], config: MotionPredictorConfig = MotionPredictorConfig()
            ) -> "MotionPredictor":
        """windows: per clip (T, 1, D, M); targets: per clip (T, K) (NaN rows are skipped)."""
        states = np.concatenate([w[:, 0, :, w.shape[-1] // 2] for w in windows])  # each state once
        proj_mean = states.mean(0)
        _, _, vt = np.linalg.svd(states[:: max(1, len(states) // 20000)] - proj_mean, full_matrices=False)
        proj = vt[: config.proj_dims].T.astype(np.float32)
        model = cls(config, proj, proj_mean.astype(np.float32), np.zeros(0, np.float32), np.ones(0, np.float32),
                    np.zeros((0, 0), np.float32))
        xs, ys = [], []
        for w, t in zip(windows, targets):
            ok = np.isfinite(t).all(axis=1)
            xs.append(model.features(w[ok]))
            ys.append(t[ok])
        x, y = np.concatenate(xs).astype(np.float64), np.concatenate(ys).astype(np.float64)
        mu, sd = x.mean(0), x.std(0) + 1e-6
        xs_ = np.hstack([(x - mu) / sd, np.ones((len(x), 1))])
        reg = config.ridge * len(x) * np.eye(xs_.shape[1])
        reg[-1, -1] = 0
        weights = np.linalg.solve(xs_.T @ xs_ + reg, xs_.T @ y)
        model.mu, model.sd, model.weights = mu.astype(np.float32), sd.astype(np.float32), weights.astype(np.float32)
        return model

    def save_pretrained(self, folder: str | pathlib.Path) -> None:
        from safetensors.numpy import save_file

        folder = pathlib.Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: np.ascontiguousarray(getattr(self, k)) for k in ("proj", "proj_mean", "mu", "sd", "weights")},
                  str(folder / WEIGHTS_NAME))
        c = self.config
        (folder / CONFIG_NAME).write_text(json.dumps(
            {"window": dataclasses.asdict(c.window), "proj_dims": c.proj_dims, "ridge": c.ridge,
             "articulation": c.articulation, "n_components": self.n_components}, indent=2))

    @classmethod
    def from_pretrained(cls, folder: str | pathlib.Path) -> "MotionPredictor":
        from safetensors.numpy import load_file

        folder = pathlib.Path(folder)
        cfg = json.loads((folder / CONFIG_NAME).read_text())
        config = MotionPredictorConfig(window=WindowSpec(**cfg["window"]), proj_dims=cfg["proj_dims"],
                                       ridge=cfg["ridge"], articulation=cfg["articulation"])
        return cls(config, **load_file(str(folder / WEIGHTS_NAME)))
