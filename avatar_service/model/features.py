"""Audio features computed incrementally, so a stream can be featurized as it arrives.

The served model sees, for video frame i, a window of feature frames around its centre time and the
same for its neighbours (DiffTalk's AudioNet input). Two front ends share that shape:

- `LogMelFeatures`: 40-band log-mel, 100 frames a second; frame j covers samples
  [j*hop - n_fft/2, j*hop + n_fft/2), so it is final once those samples are in.
- `WhisperFeatures` (model/whisper.py): Whisper-tiny encoder states, 50 a second, computed a block
  at a time; it reads mouth motion far better (`avatarlab probe-audio`: r 0.58 in these blocks vs 0.41
  for log-mel, on unseen people).

Every extractor has `rate` (frames a second), `dims`, `silence` (the value of frames outside the
signal), `final_samples(j)` (samples needed before frame j can no longer change) and
`compute(audio, first, n, cache, deadline)` (`deadline`: when a session needs the frames, for an
extractor that batches work across sessions); offline and streaming calls give identical frames.
"""
from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np
import scipy.fft


@dataclasses.dataclass(frozen=True)
class MelConfig:
    sample_rate_hz: int = 16000
    n_fft: int = 400  # 25 ms analysis window
    hop: int = 160  # 10 ms between mel frames
    n_mels: int = 40  # the probe in FINDINGS.md used 40 bands
    fmin_hz: float = 60.0
    fmax_hz: float = 7600.0
    log_floor: float = 1e-5  # fixed floor (not per clip) so streaming and offline features agree

    @property
    def frames_per_second(self) -> float:
        return self.sample_rate_hz / self.hop


@functools.lru_cache(maxsize=8)
def mel_filterbank(cfg: MelConfig) -> np.ndarray:
    """(n_mels, n_fft//2+1) HTK-style triangular filters."""
    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10 ** (m / 2595.0) - 1.0)

    freqs = np.linspace(0, cfg.sample_rate_hz / 2, cfg.n_fft // 2 + 1)
    mels = np.linspace(hz_to_mel(cfg.fmin_hz), hz_to_mel(cfg.fmax_hz), cfg.n_mels + 2)
    hz = mel_to_hz(mels)
    fb = np.zeros((cfg.n_mels, len(freqs)), np.float32)
    for i in range(cfg.n_mels):
        lo, mid, hi = hz[i], hz[i + 1], hz[i + 2]
        up = (freqs - lo) / (mid - lo)
        down = (hi - freqs) / (hi - mid)
        fb[i] = np.maximum(0, np.minimum(up, down))
    fb *= (2.0 / (hz[2:] - hz[:-2]))[:, None]  # equal area, so loudness does not depend on band width
    return fb


def log_mel(audio: np.ndarray, cfg: MelConfig, first_frame: int = 0, n_frames: int | None = None) -> np.ndarray:
    """(n_frames, n_mels) normalised log-mel of mel frames [first_frame, first_frame + n_frames).

    `audio` is the whole 16 kHz mono float signal received so far; samples outside it count as silence.
    """
    if n_frames is None:
        n_frames = int(math.ceil(len(audio) / cfg.hop)) - first_frame
    return log_mel_of_frames(analysis_frames(audio, cfg, first_frame, n_frames), cfg)


def analysis_frames(audio: np.ndarray, cfg: MelConfig, first_frame: int, n_frames: int) -> np.ndarray:
    """(n_frames, n_fft) samples of mel frames [first_frame, first_frame + n_frames), silence outside
    `audio`. Apart from `log_mel_of_frames` so that many streams' frames can share one FFT call."""
    n_frames = max(0, n_frames)
    start = first_frame * cfg.hop - cfg.n_fft // 2
    need = max(0, n_frames - 1) * cfg.hop + cfg.n_fft
    seg = np.zeros(need, np.float32)
    a, b = max(0, start), min(len(audio), start + need)
    if b > a:
        seg[a - start: b - start] = audio[a:b]
    return seg[np.arange(n_frames)[:, None] * cfg.hop + np.arange(cfg.n_fft)[None, :]]


def log_mel_of_frames(frames: np.ndarray, cfg: MelConfig) -> np.ndarray:
    """(N, n_fft) analysis frames -> (N, n_mels) normalised log-mel."""
    if not len(frames):
        return np.zeros((0, cfg.n_mels), np.float32)
    # scipy's FFT keeps float32 (numpy's goes to float64): half the time, and this runs on every
    # motion-only stream's chunks; log-mel differs by ~1e-7
    spec = scipy.fft.rfft(frames * _hann(cfg.n_fft), axis=1)
    power = spec.real ** 2 + spec.imag ** 2
    mel = power @ mel_filterbank(cfg).T
    return ((np.log10(np.maximum(mel, cfg.log_floor)) + 2.5) / 2.5).astype(np.float32)  # about [-1, 1]


@functools.lru_cache(maxsize=4)
def _hann(n: int) -> np.ndarray:
    return np.hanning(n + 1)[:-1].astype(np.float32)


def silence_value(cfg: MelConfig) -> np.float32:
    return np.float32((np.log10(cfg.log_floor) + 2.5) / 2.5)


@dataclasses.dataclass(frozen=True)
class WhisperConfig:
    window_s: float = 2.0  # encoder context per call: as good as 30 s for the mouth (probe-audio), 1/40 the cost
    block_s: float = 0.2  # states are computed a block at a time; a block is final once its audio is in
    dims: int = 384  # Whisper-tiny's encoder width
    compute_type: str = "int8"  # CTranslate2 weights as run; training and serving must agree


@dataclasses.dataclass(frozen=True)
class AudioFeatureConfig:
    kind: str = "logmel"  # "logmel" or "whisper"
    whisper: WhisperConfig = WhisperConfig()


class LogMelFeatures:
    def __init__(self, mel: MelConfig):
        self.mel = mel
        self.rate, self.dims, self.silence = mel.frames_per_second, mel.n_mels, silence_value(mel)
        self.sample_rate_hz = mel.sample_rate_hz

    def final_samples(self, j: int) -> int:
        return j * self.mel.hop + self.mel.n_fft // 2

    def compute(self, audio: np.ndarray, first: int, n: int, cache: dict | None = None, deadline: float = 0.0) -> np.ndarray:
        return log_mel(audio, self.mel, first, n)

    def all(self, audio: np.ndarray) -> np.ndarray:
        return log_mel(audio, self.mel)


@dataclasses.dataclass(frozen=True)
class WindowSpec:
    """Which feature frames a video frame's audio tokens are built from."""
    mel_radius: int = 8  # +-radius feature frames around a video frame's centre (+-80 ms of log-mel)
    neighbour_radius: int = 2  # +-2 video frames smoothed together (AudioAttNet)

    @property
    def offsets(self) -> np.ndarray:
        """Feature-frame offsets of a window from its centre."""
        return np.arange(-self.mel_radius, self.mel_radius + 1)

    def lookahead_s(self, fps: float, feat) -> float:
        """Audio needed past the end of a video frame before it can be generated (the worst frame of
        a second: block-wise features make it vary from frame to frame)."""
        return max(0.0, max(feat.final_samples(self.last_feature(i, fps, feat)) / feat.sample_rate_hz - (i + 1) / fps
                            for i in range(int(math.ceil(fps)) + 1)))

    def last_feature(self, frame: int, fps: float, feat) -> int:
        """Index of the last feature frame video frame `frame`'s window reads."""
        return int(self.mel_centres(np.array([frame]), fps, feat).max()) + self.mel_radius

    def frames_ready(self, n_samples: int, fps: float, feat) -> int:
        """How many leading video frames have final windows once `n_samples` of audio are in."""
        n = max(0, int((n_samples / feat.sample_rate_hz) * fps) + 1)
        # a frame's last feature rises with the frame: test the last 16 candidates in one call (a session
        # asks this on every audio chunk), then step down
        while n > 0:
            lo = max(0, n - 16)
            last = self.mel_centres(np.arange(lo, n), fps, feat).max(1) + self.mel_radius
            ready = int((np.asarray(feat.final_samples(last)) <= n_samples).sum())
            if ready:
                return lo + ready
            n = lo
        return 0

    def mel_centres(self, frame_indices: np.ndarray, fps: float, feat) -> np.ndarray:
        """(N, 2r+1) feature-frame index of each neighbour's centre."""
        offsets = np.arange(-self.neighbour_radius, self.neighbour_radius + 1)
        nb = np.asarray(frame_indices)[:, None] + offsets[None, :]
        return np.round((nb + 0.5) / fps * feat.rate).astype(np.int64)

    def gather(self, frames: np.ndarray, offset: int, centres: np.ndarray, feat) -> np.ndarray:
        """(N, 2r+1, dims, M) windows (M = len(offsets)) from feature `frames` whose row 0 is feature frame `offset`.
        Out-of-range frames read as silence."""
        silence = np.float32(feat.silence)
        win = centres[..., None] + self.offsets - offset
        valid = (win >= 0) & (win < len(frames))
        out = np.where(valid[..., None], frames[np.clip(win, 0, max(0, len(frames) - 1))]
                       if len(frames) else silence, silence)
        return np.ascontiguousarray(out.transpose(0, 1, 3, 2), dtype=np.float32)

    def windows(self, audio: np.ndarray, start: int, stop: int, fps: float, feat, cache: dict | None = None,
                deadline: float = 0.0) -> np.ndarray:
        """Windows of video frames [start, stop) from the audio received so far (streaming or offline)."""
        centres = self.mel_centres(np.arange(start, stop), fps, feat)
        lo, hi = max(0, int(centres.min()) + int(self.offsets[0])), int(centres.max()) + self.mel_radius + 1
        return self.gather(feat.compute(audio, lo, hi - lo, cache, deadline), lo, centres, feat)


@dataclasses.dataclass(frozen=True)
class PastWindow(WindowSpec):
    """A window with more past than future: `past` frames before the centre, `mel_radius` after (the
    look-ahead). Past context costs no latency."""
    past: int = 8

    @property
    def offsets(self) -> np.ndarray:
        return np.arange(-self.past, self.mel_radius + 1)


def clip_windows(audio16k: np.ndarray, n_video_frames: int, fps: float, feat, spec: WindowSpec) -> np.ndarray:
    """Offline: windows for every frame of a whole clip, (T, 2r+1, dims, 2m+1)."""
    return spec.gather(feat.all(audio16k), 0, spec.mel_centres(np.arange(n_video_frames), fps, feat), feat)
