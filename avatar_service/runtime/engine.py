"""The batching engine: one worker thread owns the model; frames from every session are gathered
into shared batches (same steps and guidance), so N sessions cost far less than N times one.

Sessions never block the event loop: they submit jobs and await futures that the worker resolves
with `loop.call_soon_threadsafe`.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import queue
import threading
import time
from collections import deque
from typing import Callable, Protocol

import numpy as np

from avatar_service.runtime.avatar import AvatarState, lip_points
from avatar_service.runtime.backend import Backend
from avatar_service.runtime.sampler import sample_latents

log = logging.getLogger(__name__)


@dataclasses.dataclass
class FrameJob:
    avatar: AvatarState
    pose: int
    windows: np.ndarray  # (K, n_mels, M) mel windows of this frame and its neighbours
    noise: np.ndarray  # (C, h, w) the session's shared start noise
    steps: int
    guidance: float
    postprocess: Callable[[np.ndarray], object]  # texture frame -> what the session sends; runs in order
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
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
        self.batch_wait_s = batch_wait_ms / 1000
        self.stats = EngineStats()
        self._q: queue.Queue[FrameJob | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="avatarlab-engine", daemon=True)
        self._thread.start()

    @property
    def queue_depth(self) -> int:
        return self._q.qsize()

    def submit(self, jobs: list[FrameJob]) -> None:
        now = time.perf_counter()
        for j in jobs:
            j.submitted = now
            self._q.put(j)

    def close(self) -> None:
        self._q.put(None)
        self._thread.join(timeout=10)

    def warmup(self, avatar: AvatarState, steps: int, guidance: float) -> None:
        """One real frame through every stage, so the first session does not pay for lazy init."""
        cfg = self.backend.config
        k, m = 2 * cfg.window.neighbour_radius + 1, 2 * cfg.window.mel_radius + 1
        windows = np.zeros((1, k, cfg.feature_dims, m), np.float32)
        self._compute([(avatar, 0, windows[0], np.zeros(cfg.latent_shape, np.float32))], steps, guidance)

    # -- worker thread ------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            job = self._q.get()
            if job is None:
                return
            batch = [job]
            deadline = time.monotonic() + self.batch_wait_s
            while len(batch) < self.max_batch:
                try:
                    nxt = self._q.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if nxt is None:
                    self._q.put(None)
                    break
                batch.append(nxt)
            groups: dict[tuple[int, float], list[FrameJob]] = {}
            for j in batch:
                if not j.future.done():  # a cancelled session's frames are dropped here
                    groups.setdefault((j.steps, j.guidance), []).append(j)
            for (steps, guidance), jobs in groups.items():
                self._run_group(jobs, steps, guidance)

    def _run_group(self, jobs: list[FrameJob], steps: int, guidance: float) -> None:
        t0 = time.perf_counter()
        try:
            frames = self._compute([(j.avatar, j.pose, j.windows, j.noise) for j in jobs], steps, guidance)
        except Exception:  # isolate the failing session: retry one by one
            log.exception("batch of %d failed; retrying its frames one by one", len(jobs))
            if len(jobs) > 1:
                for j in jobs:
                    self._run_group([j], steps, guidance)
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
        latencies = []
        for j, f in zip(jobs, frames):
            try:
                self._resolve(j, result=(j.postprocess(f), dt / len(jobs)))
                latencies.append(time.perf_counter() - j.submitted)
            except Exception as e:  # a postprocess bug ends that session only
                log.exception("postprocess failed")
                self._resolve(j, error=e)
        if self.observer:
            self.observer.on_batch(len(jobs), dt / 1000, latencies)

    def _compute(self, items, steps: int, guidance: float) -> list[np.ndarray]:
        b = self.backend
        windows = np.stack([w for _, _, w, _ in items])
        noise = np.stack([n for *_, n in items])
        z_masked = np.stack([a.z_masked[p] for a, p, _, _ in items])
        z_ref = np.stack([a.z_ref for a, _, _, _ in items])
        tokens, offsets = b.audio(windows)
        points = None if offsets is None else np.concatenate(
            [lip_points(a.lip_anchor, o[None], b.lip_rest) for (a, *_), o in zip(items, offsets)])
        z0 = sample_latents(b, noise, z_masked, z_ref, tokens, steps, guidance, lip_points=points)
        regions = b.decode(z0)
        return [a.composite(p, r) for (a, p, _, _), r in zip(items, regions)]

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
