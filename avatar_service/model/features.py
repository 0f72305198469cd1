"""Log-mel audio features computed incrementally, so a stream can be featurized as it arrives.

The served model sees, for video frame i, a window of mel frames around its centre time and the
same for its neighbours (DiffTalk's AudioNet input). Mel frames are 10 ms apart; a mel frame j covers
samples [j*hop - n_fft/2, j*hop + n_fft/2), so it is final once those samples are in.
"""
from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np


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
    half = cfg.n_fft // 2
    if n_frames is None:
        n_frames = int(math.ceil(len(audio) / cfg.hop)) - first_frame
    if n_frames <= 0:
        return np.zeros((0, cfg.n_mels), np.float32)
    start = first_frame * cfg.hop - half
    need = (n_frames - 1) * cfg.hop + cfg.n_fft
    seg = np.zeros(need, np.float32)
    a, b = max(0, start), min(len(audio), start + need)
    if b > a:
        seg[a - start: b - start] = audio[a:b]
    idx = np.arange(n_frames)[:, None] * cfg.hop + np.arange(cfg.n_fft)[None, :]
    frames = seg[idx] * np.hanning(cfg.n_fft + 1)[:-1].astype(np.float32)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    mel = power @ mel_filterbank(cfg).T
    return ((np.log10(np.maximum(mel, cfg.log_floor)) + 2.5) / 2.5).astype(np.float32)  # about [-1, 1]


def silence_value(cfg: MelConfig) -> np.float32:
    return np.float32((np.log10(cfg.log_floor) + 2.5) / 2.5)


@dataclasses.dataclass(frozen=True)
class WindowSpec:
    """Which mel frames a video frame's audio tokens are built from."""
    mel_radius: int = 8  # +-80 ms of mel frames around a video frame's centre
    neighbour_radius: int = 2  # +-2 video frames smoothed together (AudioAttNet)

    def lookahead_s(self, fps: float, mel: MelConfig) -> float:
        """Audio needed past the end of frame i before frame i can be generated."""
        return self.neighbour_radius / fps + (self.mel_radius * mel.hop + mel.n_fft // 2) / mel.sample_rate_hz

    def mel_centres(self, frame_indices: np.ndarray, fps: float, mel: MelConfig) -> np.ndarray:
        """(N, 2r+1) mel-frame index of each neighbour's centre."""
        offsets = np.arange(-self.neighbour_radius, self.neighbour_radius + 1)
        nb = np.asarray(frame_indices)[:, None] + offsets[None, :]
        return np.round((nb + 0.5) / fps * mel.frames_per_second).astype(np.int64)

    def gather(self, mel_frames: np.ndarray, mel_offset: int, centres: np.ndarray, mel: MelConfig) -> np.ndarray:
        """(N, 2r+1, n_mels, 2m+1) windows from `mel_frames` whose row 0 is mel frame `mel_offset`.
        Out-of-range frames read as silence (the feature of a zero signal)."""
        silence = silence_value(mel)
        win = centres[..., None] + np.arange(-self.mel_radius, self.mel_radius + 1) - mel_offset
        valid = (win >= 0) & (win < len(mel_frames))
        out = np.where(valid[..., None], mel_frames[np.clip(win, 0, max(0, len(mel_frames) - 1))]
                       if len(mel_frames) else silence, silence)
        return np.ascontiguousarray(out.transpose(0, 1, 3, 2), dtype=np.float32)


def clip_windows(audio16k: np.ndarray, n_video_frames: int, fps: float, mel: MelConfig, spec: WindowSpec) -> np.ndarray:
    """Offline: windows for every frame of a whole clip, (T, 2r+1, n_mels, 2m+1)."""
    frames = log_mel(audio16k, mel)
    return spec.gather(frames, 0, spec.mel_centres(np.arange(n_video_frames), fps, mel), mel)
