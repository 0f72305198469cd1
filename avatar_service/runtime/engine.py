"""The batching engine: one worker thread owns the networks; frames of every session are gathered
into shared batches (same steps and guidance), so N sessions cost far less than N times one.

The engine runs only the networks (audio encoder, sampler, decoder) and hands each frame back as its
decoded mouth region; compositing and encoding happen in the session, off this thread (runtime/session.py).
Work is taken earliest deadline first (avatar_service/batching.py), so a session that sent a long
clip at once does not starve a paced real-time one. Sessions never block the event loop: they submit
jobs and await futures that the worker resolves with `loop.call_soon_threadsafe`.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import deque
from typing import Protocol

import numpy as np

from avatar_service.batching import Batcher
from avatar_service.runtime.avatar import AvatarState, lip_points
from avatar_service.runtime.backend import Backend
from avatar_service.runtime.sampler import sample_regions

log = logging.getLogger(__name__)


@dataclasses.dataclass
class FrameJob:
    avatar: AvatarState
    pose: int
    windows: np.ndarray  # (K, dims, M) feature windows of this frame and its neighbours
    noise: np.ndarray  # (C, h, w) the session's shared start noise
    steps: int
    guidance: float
    future: asyncio.Future  # -> (region (3, H, W) float32 in [-1, 1], model ms per frame of its batch)
    loop: asyncio.AbstractEventLoop
    deadline: float = 0.0  # time.monotonic() the frame is due: its session's start plus its pts
    submitted: float = 0.0  # perf_counter() when queued; set by Engine.submit


@dataclasses.dataclass
class EngineStats:
    batches: int = 0
    frames: int = 0
    batch_sizes: deque = dataclasses.field(default_factory=lambda: deque(maxlen=1000))
    model_ms_per_frame: deque = dataclasses.field(default_factory=lambda: deque(maxlen=1000))
    errors: int = 0


class EngineObserver(Protocol):
    """Where the engine reports what it did (server/metrics.py); called on the worker thread."""

    def on_batch(self, size: int, step_s: float, frame_latencies_s: list[float]) -> None: ...
    def on_frame_error(self) -> None: ...


class Engine:
    def __init__(self, backend: Backend, max_batch: int = 32, batch_wait_ms: float = 3.0,
                 observer: EngineObserver | None = None):
        self.backend = backend
        self.observer = observer
        self.max_batch = max_batch
        self.stats = EngineStats()
        self._batcher: Batcher[FrameJob] = Batcher(
            self._run_group, name="avatarlab-engine", max_batch=max_batch, wait_s=batch_wait_ms / 1000,
            key=lambda j: (j.steps, j.guidance), deadline=lambda j: j.deadline)

    @property
    def queue_depth(self) -> int:
        return self._batcher.depth

    def submit(self, jobs: list[FrameJob]) -> None:
        now = time.perf_counter()
        for j in jobs:
            j.submitted = now
        self._batcher.submit(jobs)

    def close(self) -> None:
        self._batcher.close()

    def warmup(self, avatar: AvatarState, steps: int, guidance: float) -> None:
        """One real frame through every stage, compositing included, so the first session does not pay
        for lazy init."""
        cfg = self.backend.config
        k, m = 2 * cfg.window.neighbour_radius + 1, 2 * cfg.window.mel_radius + 1
        windows = np.zeros((1, k, cfg.feature_dims, m), np.float32)
        region = self._compute([(avatar, 0, windows[0], np.zeros(cfg.latent_shape, np.float32))], steps, guidance)[0]
        avatar.composite(0, region)

    # -- worker thread ------------------------------------------------------------------------------
    def _run_group(self, key: tuple[int, float], jobs: list[FrameJob]) -> None:
        jobs = [j for j in jobs if not j.future.done()]  # a cancelled session's frames are dropped here
        if jobs:
            self._run_jobs(jobs, *key)

    def _run_jobs(self, jobs: list[FrameJob], steps: int, guidance: float) -> None:
        t0 = time.perf_counter()
        try:
            regions = self._compute([(j.avatar, j.pose, j.windows, j.noise) for j in jobs], steps, guidance)
        except Exception:  # isolate the failing session: retry one by one
            log.exception("batch of %d failed; retrying its frames one by one", len(jobs))
            if len(jobs) > 1:
                for j in jobs:
                    self._run_jobs([j], steps, guidance)
                return
            self.stats.errors += 1
            if self.observer:
                self.observer.on_frame_error()
            self._resolve(jobs[0], error=RuntimeError("frame generation failed"))
            return
        dt = (time.perf_counter() - t0) * 1000
        self.stats.batches += 1
        self.stats.frames += len(jobs)
        self.stats.batch_sizes.append(len(jobs))
        self.stats.model_ms_per_frame.append(dt / len(jobs))
        now = time.perf_counter()
        for j, r in zip(jobs, regions):
            self._resolve(j, result=(r, dt / len(jobs)))
        if self.observer:
            self.observer.on_batch(len(jobs), dt / 1000, [now - j.submitted for j in jobs])

    def _compute(self, items, steps: int, guidance: float) -> np.ndarray:
        """(avatar, pose, windows, noise) items -> decoded regions (B, 3, H, W)."""
        b = self.backend
        windows = np.stack([w for _, _, w, _ in items])
        noise = np.stack([n for *_, n in items])
        z_masked = np.stack([a.z_masked[p] for a, p, _, _ in items])
        z_ref = np.stack([a.z_ref for a, _, _, _ in items])
        tokens, offsets = b.audio(windows)
        points = None if offsets is None else np.concatenate(
            [lip_points(a.lip_anchor, o[None], b.lip_rest) for (a, *_), o in zip(items, offsets)])
        return sample_regions(b, noise, z_masked, z_ref, tokens, steps, guidance, lip_points=points)

    @staticmethod
    def _resolve(job: FrameJob, result=None, error: BaseException | None = None) -> None:
        def set_():
            if job.future.done():
                return
            if error is not None:
                job.future.set_exception(error)
            else:
                job.future.set_result(result)
        try:
            job.loop.call_soon_threadsafe(set_)
        except RuntimeError:  # the loop is gone (server stopped)
            pass
