"""The mouth stream's cheap audio front end: log-mel and a small network distilled from the Whisper-based
MotionPredictor (model/motion.py, the teacher), for motion-only sessions by the hundred.

The teacher runs Whisper-tiny's encoder on 1 s of audio every 40 ms: about 160 ms of CPU per stream
second. The student reads 40-band log-mel (25 ms window, 10 ms hop: LogMelFeatures, model/features.py)
and predicts the same two outputs, the motion coefficients about the closed mouth (spread units) and
the 15 viseme logits, so the mouth rig, the loudness gate and everything after them are unchanged.

Network, per video frame (numpy at serving, like the teacher's heads):
  each mel frame  -> standardised -> `frame` layer (40 bands -> 16, GELU): a per-frame code, computed
                     once per mel frame and kept per stream (a 1x1 convolution over time)
  the window of codes at mel frames [centre - past, centre + future] -> flattened -> `trunk` MLP
                     (640 -> 128 -> 128 -> K + 15)
The window is a PastWindow (model/features.py): 280 ms of past, 110 ms of future. Look-ahead: frame i's
last mel frame is final 12.5 ms after its centre, so motion for audio at time t is ready at t + 102.5 ms
at 25 fps (109 ms at 30 fps, 119 ms at 60), within the teacher's 120 ms.

Offline (`clip_windows`) and streaming (runtime/mouth.py MelMouth) give the same frames: mel frames
outside the signal are computed from silence in both.
"""
from __future__ import annotations

import dataclasses
import json
import pathlib

import numpy as np

from avatar_service.model.features import LogMelFeatures, MelConfig, PastWindow, log_mel
from avatar_service.model.motion import Head, gelu, loudness_gates, softmax

CONFIG_NAME, WEIGHTS_NAME = "motion_student.json", "motion_student.safetensors"


@dataclasses.dataclass(frozen=True)
class StudentConfig:
    mel: MelConfig = MelConfig(n_mels=40)
    window: PastWindow = PastWindow(mel_radius=11, neighbour_radius=0, past=28)  # 10 ms mel frames
    frame_dims: int = 16  # per-mel-frame code (32, with 256-wide layers: 4x the cost, no better)
    hidden: tuple[int, ...] = (128, 128)  # trunk hidden layers
    n_components: int = 12
    n_visemes: int = 15
    articulation: float = 1.0
    gate: tuple[float, float, float] = (-70.0, -60.0, 0.1)  # the teacher's (model/motion.py loudness_gate)
    # Where the teacher runs too (image sessions, render, dub), its motion and this student's are averaged
    # with this weight on the student's (runtime/warp_renderer.py MotionModel): the two read different
    # features and err differently. Chosen by cross-validation over the training people
    # (tools/student_blend_cv.py); 0 keeps the teacher alone.
    blend: float = 0.0

    def __post_init__(self):
        # a stream gates a frame once its window is in: the gate must not read audio past the window
        if self.gate[2] > self.window.mel_radius * self.mel.hop / self.mel.sample_rate_hz + 1e-9:
            raise ValueError(f"the loudness gate's radius ({self.gate[2]} s) reaches past the window's "
                             f"{self.window.mel_radius} mel frames of look-ahead")

    @property
    def frames(self) -> int:
        """Mel frames per window."""
        return len(self.window.offsets)

    def to_json(self) -> dict:
        return {"mel": dataclasses.asdict(self.mel), "window": dataclasses.asdict(self.window),
                "frame_dims": self.frame_dims, "hidden": list(self.hidden), "n_components": self.n_components,
                "n_visemes": self.n_visemes, "articulation": self.articulation, "gate": list(self.gate),
                "blend": self.blend}

    @classmethod
    def from_json(cls, d: dict) -> "StudentConfig":
        return cls(mel=MelConfig(**d["mel"]), window=PastWindow(**d["window"]), frame_dims=d["frame_dims"],
                   hidden=tuple(d["hidden"]), n_components=d["n_components"], n_visemes=d["n_visemes"],
                   articulation=d["articulation"], gate=tuple(d["gate"]), blend=d.get("blend", 0.0))


@dataclasses.dataclass
class MotionStudent:
    config: StudentConfig
    mu: np.ndarray  # (B,) per-band mean of the training mel
    sd: np.ndarray  # (B,) per-band spread
    frame: Head  # one layer: (B,) -> (C,), GELU after it
    trunk: Head  # (T * C,) -> (K + V,)

    @classmethod
    def init(cls, config: StudentConfig, seed: int = 0) -> "MotionStudent":
        """Random weights (training starts here; tests use it)."""
        rng = np.random.default_rng(seed)
        dims = [config.frames * config.frame_dims, *config.hidden, config.n_components + config.n_visemes]
        dense = lambda a, b: (rng.standard_normal((a, b)).astype(np.float32) / np.sqrt(a), np.zeros(b, np.float32))  # noqa: E731
        b = config.mel.n_mels
        return cls(config, np.zeros(b, np.float32), np.ones(b, np.float32), Head([dense(b, config.frame_dims)]),
                   Head([dense(a, c) for a, c in zip(dims[:-1], dims[1:])]))

    # -- features -------------------------------------------------------------------------------------
    def feature_extractor(self) -> LogMelFeatures:
        return LogMelFeatures(self.config.mel)

    def codes(self, mel: np.ndarray) -> np.ndarray:
        """(..., B) log-mel frames -> (..., C) per-frame codes."""
        return gelu(self.frame((np.asarray(mel, np.float32) - self.mu) / self.sd)).astype(np.float32)

    def mel_centres(self, frames: np.ndarray, fps: float) -> np.ndarray:
        """(N,) mel frame at the centre of each video frame."""
        return self.config.window.mel_centres(np.asarray(frames), fps, self.feature_extractor())[:, 0]

    def clip_windows(self, audio16k: np.ndarray, n_frames: int, fps: float) -> np.ndarray:
        """Offline: (n_frames, T, B) mel windows of every frame of a whole clip, as a stream gets them."""
        return self.mel_windows(audio16k, self.mel_centres(np.arange(n_frames), fps))

    def mel_windows(self, audio16k: np.ndarray, centres: np.ndarray) -> np.ndarray:
        """(N, T, B) mel windows around mel frames `centres` (silence outside the signal)."""
        off = self.config.window.offsets
        if not len(centres):
            return np.zeros((0, len(off), self.config.mel.n_mels), np.float32)
        lo = int(centres.min()) + int(off[0])
        mel = log_mel(audio16k, self.config.mel, lo, int(centres.max()) + int(off[-1]) + 1 - lo)
        return mel[(np.asarray(centres) - lo)[:, None] + off[None, :]]

    def lookahead_s(self, fps: float) -> float:
        return self.config.window.lookahead_s(fps, self.feature_extractor())

    def gate(self, audio16k: np.ndarray, start: int, stop: int, fps: float) -> np.ndarray:
        return self.gates([(audio16k, start, stop, fps)])

    def gates(self, requests: list[tuple[np.ndarray, int, int, float]]) -> np.ndarray:
        """The loudness gate (the teacher's setting) of many streams' frames at once, concatenated."""
        floor, full, radius = self.config.gate
        return loudness_gates(requests, floor_db=floor, full_db=full, radius_s=radius)

    # -- the network ----------------------------------------------------------------------------------
    def outputs_of_codes(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, T, C) windows of codes -> motion (N, K) about the closed mouth in spread units (before
        articulation) and viseme logits (N, V)."""
        y = self.trunk(np.asarray(codes, np.float32).reshape(len(codes), -1))
        k = self.config.n_components
        return y[:, :k], y[:, k:]

    def outputs(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, T, B) mel windows -> (motion, viseme logits)."""
        return self.outputs_of_codes(self.codes(windows))

    def predict(self, windows: np.ndarray) -> np.ndarray:
        """(N, K) motion, as MotionPredictor.predict."""
        return (self.outputs(windows)[0] * self.config.articulation).astype(np.float32)

    def visemes(self, windows: np.ndarray) -> np.ndarray:
        return softmax(self.outputs(windows)[1])

    # -- persistence: beside the teacher in the motion model folder -----------------------------------
    def save_pretrained(self, folder: str | pathlib.Path, notes: dict | None = None) -> None:
        from safetensors.numpy import save_file

        folder = pathlib.Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {"mu": self.mu, "sd": self.sd} | self.frame.tensors("frame") | self.trunk.tensors("trunk")
        save_file({k: np.ascontiguousarray(v, np.float32) for k, v in tensors.items()}, str(folder / WEIGHTS_NAME))
        (folder / CONFIG_NAME).write_text(json.dumps(self.config.to_json() | (notes or {}), indent=2))

    @classmethod
    def from_pretrained(cls, folder: str | pathlib.Path) -> "MotionStudent":
        from safetensors.numpy import load_file

        folder = pathlib.Path(folder)
        config = StudentConfig.from_json(json.loads((folder / CONFIG_NAME).read_text()))
        t = load_file(str(folder / WEIGHTS_NAME))
        return cls(config, t["mu"], t["sd"], Head.from_tensors(t, "frame"), Head.from_tensors(t, "trunk"))

    @staticmethod
    def present(folder: str | pathlib.Path) -> bool:
        return (pathlib.Path(folder) / CONFIG_NAME).exists()
