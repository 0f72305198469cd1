"""Incoming session audio: validated PCM chunks of any size -> one growing 16 kHz mono buffer."""
from __future__ import annotations

import numpy as np
import soxr

from avatar_service.errors import InvalidArgument, ResourceExhausted

ENCODINGS = {1: ("<i2", 2), 2: ("<f4", 4)}  # AudioEncoding value -> (numpy dtype, bytes a sample)
MIN_RATE_HZ, MAX_RATE_HZ = 8000, 192000


class AudioStream:
    def __init__(self, encoding: int, sample_rate_hz: int, channels: int, model_rate_hz: int, max_seconds: float):
        if encoding not in ENCODINGS:
            raise InvalidArgument("audio_format.encoding must be AUDIO_ENCODING_PCM_S16LE or AUDIO_ENCODING_PCM_F32LE")
        if not MIN_RATE_HZ <= sample_rate_hz <= MAX_RATE_HZ:
            raise InvalidArgument(f"audio_format.sample_rate_hz must be {MIN_RATE_HZ} to {MAX_RATE_HZ}, got {sample_rate_hz}")
        channels = channels or 1
        if channels not in (1, 2):
            raise InvalidArgument(f"audio_format.channels must be 1 or 2, got {channels}")
        self.dtype, width = ENCODINGS[encoding]
        self.frame_bytes = width * channels
        self.channels, self.rate = channels, sample_rate_hz
        self.model_rate = model_rate_hz
        self.max_seconds = max_seconds
        self._resampler = None if sample_rate_hz == model_rate_hz else soxr.ResampleStream(
            sample_rate_hz, model_rate_hz, 1, dtype="float32", quality="HQ")
        self._buf = np.zeros(model_rate_hz * 4, np.float32)
        self._len = 0
        self.input_samples = 0  # per channel, at the input rate: the exact clock of the session
        self.ended = False

    @property
    def samples(self) -> np.ndarray:
        return self._buf[: self._len]

    @property
    def duration_s(self) -> float:
        return self.input_samples / self.rate

    def push(self, data: bytes) -> None:
        if self.ended:
            raise InvalidArgument("audio after end_of_audio")
        if len(data) % self.frame_bytes:
            raise InvalidArgument(f"audio chunk of {len(data)} bytes is not a whole number of "
                                  f"{self.frame_bytes}-byte sample frames")
        if not data:
            return
        pcm = np.frombuffer(data, self.dtype).astype(np.float32)
        if self.dtype == "<i2":
            pcm /= 32768.0
        elif not np.all(np.isfinite(pcm)):
            raise InvalidArgument("f32 audio contains NaN or infinity")
        pcm = pcm.reshape(-1, self.channels).mean(axis=1)
        self.input_samples += len(pcm)
        if self.duration_s > self.max_seconds:
            raise ResourceExhausted(f"session audio is over the {self.max_seconds:g} s limit")
        self._append(pcm if self._resampler is None else self._resampler.resample_chunk(pcm))

    def end(self) -> None:
        if self._resampler is not None and not self.ended:
            self._append(self._resampler.resample_chunk(np.zeros(0, np.float32), last=True))
        self.ended = True

    def _append(self, x: np.ndarray) -> None:
        need = self._len + len(x)
        if need > len(self._buf):
            grown = np.zeros(max(need, 2 * len(self._buf)), np.float32)
            grown[: self._len] = self._buf[: self._len]
            self._buf = grown
        self._buf[self._len: need] = np.clip(x, -1.0, 1.0)
        self._len = need
