"""Incoming session audio: PCM chunks of any size, or float samples, -> one growing mono buffer at the
model's rate. The request's format is checked where it is read (server/translate.py); what arrives
here is checked against that format."""
from __future__ import annotations

import enum

import numpy as np
import soxr

from avatar_service.errors import InvalidArgument, ResourceExhausted

MIN_RATE_HZ, MAX_RATE_HZ = 8000, 192000


class SampleFormat(enum.Enum):
    S16LE = ("<i2", 2)  # numpy dtype, bytes a sample
    F32LE = ("<f4", 4)


class AudioStream:
    def __init__(self, fmt: SampleFormat, sample_rate_hz: int, channels: int, model_rate_hz: int, max_seconds: float):
        if not MIN_RATE_HZ <= sample_rate_hz <= MAX_RATE_HZ or channels not in (1, 2):
            raise ValueError(f"unsupported audio: {sample_rate_hz} Hz, {channels} channels")
        self.dtype, width = fmt.value
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
        """Interleaved PCM bytes in the stream's sample format."""
        if self.ended:
            raise InvalidArgument("audio after end_of_audio")
        if len(data) % self.frame_bytes:
            raise InvalidArgument(f"audio chunk of {len(data)} bytes is not a whole number of "
                                  f"{self.frame_bytes}-byte sample frames")
        if not data:
            return
        pcm = np.frombuffer(data, self.dtype)
        if self.dtype == "<i2":  # 16-bit PCM is finite and within [-1, 1): no check, no clip
            pcm = pcm * np.float32(1 / 32768)
        else:
            pcm = pcm.astype(np.float32)
        if self.channels > 1:
            pcm = pcm.reshape(-1, self.channels).mean(axis=1)
        self._accept(pcm, checked=self.dtype == "<i2")

    def push_samples(self, pcm: np.ndarray) -> None:
        """Mono float samples at the stream's rate (what a speech synthesizer makes)."""
        if self.ended:
            raise InvalidArgument("audio after end_of_audio")
        self._accept(np.asarray(pcm, np.float32), checked=False)

    def _accept(self, pcm: np.ndarray, checked: bool) -> None:
        # this runs on the event loop for every audio message of every stream: no work 16-bit PCM can skip
        if not checked and not np.all(np.isfinite(pcm)):
            raise InvalidArgument("f32 audio contains NaN or infinity")
        self.input_samples += len(pcm)
        if self.duration_s > self.max_seconds:
            raise ResourceExhausted(f"session audio is over the {self.max_seconds:g} s limit")
        if self._resampler is None:
            self._append(pcm, clip=not checked)
        else:  # a resampler may ring past full scale
            self._append(self._resampler.resample_chunk(pcm), clip=True)

    def end(self) -> None:
        if self._resampler is not None and not self.ended:
            self._append(self._resampler.resample_chunk(np.zeros(0, np.float32), last=True), clip=True)
        self.ended = True

    def _append(self, x: np.ndarray, clip: bool) -> None:
        need = self._len + len(x)
        if need > len(self._buf):
            grown = np.zeros(max(need, 2 * len(self._buf)), np.float32)
            grown[: self._len] = self._buf[: self._len]
            self._buf = grown
        self._buf[self._len: need] = np.clip(x, -1.0, 1.0) if clip else x
        self._len = need
