"""Speech -> mouth motion: the lower-face motion coefficients (face/motion.py) of each video frame and
the 15 viseme weights (speech/visemes.py), predicted from Whisper-tiny encoder states.

The input of frame i is the window of encoder states within +-`window.mel_radius` states (20 ms each)
of the frame's centre, each state projected on a PCA of the 384 encoder dims, then standardised. Two
heads read it: `motion` (its target is the frame's coefficients relative to that person's closed
mouth, in units of each component's spread, so silence predicts ~0 = closed for anyone) and
`visemes` (trained on synthetic speech with exact phoneme timings). A head is a small MLP (or, as the
first version, one linear layer); it runs in numpy, so serving needs no torch.

Streaming and look-ahead. The states come from `features` (model/whisper.py): the encoder runs on the
`window_s` of audio that ends at each `block_s` block's end, so a block is final once its audio is in.
With 40 ms blocks and a +-6 state window, frame i's motion needs audio up to 120 ms past the frame's
end (`lookahead_s`): motion for the audio at time t is ready once t + 120 ms has arrived (plus the
encoder's compute time), and offline and streaming give the same frames. The generator's features
(200 ms blocks) would put that at 280 ms, so this model has its own feature settings.
"""
from __future__ import annotations

import dataclasses
import json
import pathlib

import numpy as np

from avatar_service.model.features import WhisperConfig, WindowSpec

CONFIG_NAME, WEIGHTS_NAME = "motion_predictor.json", "motion_predictor.safetensors"
HEADS = ("motion", "visemes")


def loudness_gate(audio: np.ndarray, start: int, stop: int, fps: float, sample_rate_hz: int = 16000,
                  floor_db: float = -65.0, full_db: float = -50.0, radius_s: float = 0.06) -> np.ndarray:
    """(stop - start,) in [0, 1] per video frame: 0 where the audio around the frame (+-radius) is below
    `floor_db` dBFS, 1 above `full_db`. Motion is scaled by it, so the mouth closes on silence whatever
    the model reads into it. Each model carries its own setting (`MotionPredictorConfig.gate`): the
    first (ridge) model answers silence with an average, half-open mouth and needs the gate to close:
    at -65/-50 dBFS it costs held-out opening r 0.06 (-50/-35 cost 0.13: quiet recordings closed
    mid-speech). A model trained on silent rows closes by itself and is best with a lower gate, since
    lips move before and between loud sounds (held-out opening r 0.571 ungated, 0.566 at -70/-60 dBFS
    and 0.1 s, 0.537 at -65/-50 and 0.06 s)."""
    return loudness_gates([(audio, start, stop, fps)], sample_rate_hz, floor_db, full_db, radius_s)


def loudness_gates(requests: list[tuple[np.ndarray, int, int, float]], sample_rate_hz: int = 16000,
                   floor_db: float = -65.0, full_db: float = -50.0, radius_s: float = 0.06) -> np.ndarray:
    """`loudness_gate` of many (audio, start, stop, fps) at once, concatenated: one running sum of
    power over all of them (a mouth stream serving many sessions gates them in one call)."""
    r = int(radius_s * sample_rate_hz)
    # Python per request is only slicing; every frame's window is computed at once below (this runs once
    # per chunk of every motion-only stream)
    spans, rows, base = [], [], 0
    for audio, start, stop, fps in requests:
        if stop <= start:
            continue
        n_audio = len(audio)
        a = min(max(0, int((start + 0.5) / fps * sample_rate_hz) - r), n_audio)
        b = max(min(n_audio, int((stop - 0.5) / fps * sample_rate_hz) + r), a)
        spans.append(audio[a:b])
        rows.append((start, stop, fps, a, base, n_audio))
        base += b - a
    if not rows:
        return np.zeros(0, np.float32)
    x = np.concatenate(spans).astype(np.float32, copy=False)
    power = np.empty(len(x) + 1, np.float64)
    power[0] = 0.0
    np.cumsum(x * x, dtype=np.float64, out=power[1:])
    counts = [stop - start for start, stop, *_ in rows]
    frame = np.arange(sum(counts)) - np.repeat(np.cumsum([0] + counts[:-1]), counts)
    cols = np.array([(start, fps, a, base, n_audio) for start, _, fps, a, base, n_audio in rows], np.float64)
    start, fps, a, base, n_audio = np.repeat(cols, counts, axis=0).T
    centres = ((start + frame + 0.5) / fps * sample_rate_hz).astype(np.int64)
    lo = (np.clip(centres - r, 0, n_audio) - a + base).astype(np.int64)
    hi = (np.clip(centres + r, 0, n_audio) - a + base).astype(np.int64)
    n = hi - lo
    mean = (power[hi] - power[lo]) / np.maximum(n, 1)
    db = np.where(n > 0, 10 * np.log10(np.maximum(mean, 0.0) + 1e-12), -120.0)
    return np.clip((db - floor_db) / (full_db - floor_db), 0.0, 1.0).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class MotionPredictorConfig:
    window: WindowSpec = WindowSpec(mel_radius=6, neighbour_radius=0)
    # 40 ms blocks: look-ahead 120 ms; a 1 s encoder window reads the mouth as well as 2 s, at half the cost
    features: WhisperConfig = WhisperConfig(window_s=1.0, block_s=0.04)
    proj_dims: int = 128  # PCA of the encoder states before windowing (held-out opening r 0.566 at 64, 0.592 at 128, 0.579 at 192)
    articulation: float = 1.0  # scales the motion at serving (regression pulls towards the average mouth)
    # loudness gate at serving (floor dBFS, full dBFS, radius s): digital silence only, since this model
    # closes the mouth on silence itself; the radius stays within the 120 ms look-ahead
    gate: tuple[float, float, float] = (-70.0, -60.0, 0.1)


def gelu(x: np.ndarray) -> np.ndarray:
    """tanh-approximate GELU, as torch.nn.GELU(approximate="tanh") trains it."""
    return 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * (x * x * x))))  # x ** 3 is 500x slower


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, V) logits."""
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return (z / z.sum(axis=1, keepdims=True)).astype(np.float32)


@dataclasses.dataclass
class Head:
    """Dense layers [(W (in, out), b (out,))] with GELU between them."""
    layers: list[tuple[np.ndarray, np.ndarray]]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        for k, (w, b) in enumerate(self.layers):
            x = x @ w + b
            if k < len(self.layers) - 1:
                x = gelu(x)
        return x

    @property
    def out_dims(self) -> int:
        return self.layers[-1][0].shape[1]

    def tensors(self, name: str) -> dict[str, np.ndarray]:
        out = {}
        for k, (w, b) in enumerate(self.layers):
            out[f"{name}.{k}.weight"], out[f"{name}.{k}.bias"] = w, b
        return out

    @classmethod
    def from_tensors(cls, t: dict[str, np.ndarray], name: str) -> "Head | None":
        layers, k = [], 0
        while f"{name}.{k}.weight" in t:
            layers.append((t[f"{name}.{k}.weight"], t[f"{name}.{k}.bias"]))
            k += 1
        return cls(layers) if layers else None


@dataclasses.dataclass
class MotionPredictor:
    config: MotionPredictorConfig
    proj: np.ndarray  # (D, P) encoder dims -> projected dims
    proj_mean: np.ndarray  # (D,)
    mu: np.ndarray  # (F,) feature mean
    sd: np.ndarray  # (F,) feature spread
    motion: Head  # (F,) -> (K,) motion about the closed mouth, in spread units
    visemes_head: Head | None = None  # (F,) -> (15,) viseme logits

    @property
    def n_components(self) -> int:
        return self.motion.out_dims

    # -- features -------------------------------------------------------------------------------------
    def feature_extractor(self):
        """The Whisper feature extractor this model was trained on (shared per process)."""
        from avatar_service.model.whisper import WhisperFeatures

        return WhisperFeatures.shared(self.config.features, 16000, "cpu")

    def windows(self, audio16k: np.ndarray, start: int, stop: int, fps: float, cache: dict | None = None) -> np.ndarray:
        """Windows of video frames [start, stop) from the audio received so far (streaming or offline;
        `cache` is a dict kept per stream)."""
        return self.config.window.windows(audio16k, start, stop, fps, self.feature_extractor(), cache)

    def clip_windows(self, audio16k: np.ndarray, n_frames: int, fps: float) -> np.ndarray:
        """Offline: windows of every frame of a whole clip."""
        from avatar_service.model.features import clip_windows

        return clip_windows(audio16k, n_frames, fps, self.feature_extractor(), self.config.window)

    def lookahead_s(self, fps: float) -> float:
        """Audio needed past a frame's end before its motion is final (worst frame of a second)."""
        return self.config.window.lookahead_s(fps, self.feature_extractor())

    def features(self, windows: np.ndarray) -> np.ndarray:
        """(N, 1, D, M) windows (WindowSpec.gather layout) -> (N, F) standardised."""
        w = np.asarray(windows, np.float32)[:, 0].transpose(0, 2, 1)  # (N, M, D)
        x = ((w - self.proj_mean) @ self.proj).reshape(len(w), -1)
        return (x - self.mu) / self.sd

    def gate(self, audio16k: np.ndarray, start: int, stop: int, fps: float) -> np.ndarray:
        """(stop - start,) loudness gate of frames [start, stop) at this model's setting."""
        floor, full, radius = self.config.gate
        return loudness_gate(audio16k, start, stop, fps, floor_db=floor, full_db=full, radius_s=radius)

    # -- heads ----------------------------------------------------------------------------------------
    def predict(self, windows: np.ndarray, articulation: float | None = None) -> np.ndarray:
        """(N, K) motion coefficients about the closed mouth, in units of each component's spread."""
        y = self.motion(self.features(windows))
        return (y * (self.config.articulation if articulation is None else articulation)).astype(np.float32)

    def visemes(self, windows: np.ndarray) -> np.ndarray:
        """(N, 15) viseme weights (softmax; order speech/visemes.VISEMES)."""
        if self.visemes_head is None:
            raise ValueError("this motion model has no viseme head: retrain it with `avatarlab train motion`")
        return softmax(self.visemes_head(self.features(windows)))

    # -- persistence ----------------------------------------------------------------------------------
    def save_pretrained(self, folder: str | pathlib.Path) -> None:
        from safetensors.numpy import save_file

        folder = pathlib.Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {k: getattr(self, k) for k in ("proj", "proj_mean", "mu", "sd")} | self.motion.tensors("motion")
        if self.visemes_head is not None:
            tensors |= self.visemes_head.tensors("visemes")
        save_file({k: np.ascontiguousarray(v, np.float32) for k, v in tensors.items()}, str(folder / WEIGHTS_NAME))
        c = self.config
        (folder / CONFIG_NAME).write_text(json.dumps(
            {"window": dataclasses.asdict(c.window), "features": dataclasses.asdict(c.features),
             "proj_dims": c.proj_dims, "articulation": c.articulation, "gate": list(c.gate),
             "n_components": self.n_components,
             "motion_layers": len(self.motion.layers),
             "visemes": None if self.visemes_head is None else list(_viseme_names())}, indent=2))

    @classmethod
    def from_pretrained(cls, folder: str | pathlib.Path) -> "MotionPredictor":
        from safetensors.numpy import load_file

        folder = pathlib.Path(folder)
        cfg = json.loads((folder / CONFIG_NAME).read_text())
        t = load_file(str(folder / WEIGHTS_NAME))
        # the first (ridge) version: one linear layer stored with its bias as the last row, and the
        # generator's feature settings
        features = WhisperConfig(**cfg["features"]) if "features" in cfg else WhisperConfig()
        if "weights" in t:
            w = t.pop("weights")
            t["motion.0.weight"], t["motion.0.bias"] = w[:-1], w[-1]
        # ... and the gate it needs to close on silence
        gate = tuple(cfg["gate"]) if "gate" in cfg else (-65.0, -50.0, 0.06)
        config = MotionPredictorConfig(window=WindowSpec(**cfg["window"]), features=features,
                                       proj_dims=cfg["proj_dims"], articulation=cfg["articulation"], gate=gate)
        return cls(config, t["proj"], t["proj_mean"], t["mu"], t["sd"], Head.from_tensors(t, "motion"),
                   Head.from_tensors(t, "visemes"))


def _viseme_names() -> tuple[str, ...]:
    from avatar_service.speech.visemes import VISEMES

    return VISEMES
