"""How a session turns feature windows into face textures: the one seam between the session pipeline
(runtime/session.py) and the two renderers.

  warp       (default) the person's own pixels moved to the mouth geometry predicted from speech
             (runtime/warp_renderer.py): sharp, exact identity, a few ms a frame on a CPU
  diffusion  the DiffTalk-style latent-diffusion generator redraws the lower face (runtime/engine.py
             runs its networks in shared batches); kept for comparison (`--renderer diffusion`)

A renderer says which feature windows it reads (`window`), turns a run of them into per-frame
payloads (`submit`: futures, so the diffusion engine can batch across sessions) and a payload into
the texture plus the rectangle it changed (`finish`, on the session's worker thread).
"""
from __future__ import annotations

import asyncio
import collections
import threading
import time

import numpy as np

from avatar_service.model.features import WindowSpec
from avatar_service.runtime.avatar import AvatarState
from avatar_service.runtime.engine import Engine, FrameJob

RENDERERS = ("warp", "diffusion")


class DiffusionRenderer:
    name = "diffusion"

    def __init__(self, engine: Engine):
        self.engine = engine
        cfg = engine.backend.config
        self.window: WindowSpec = cfg.window
        self.features = cfg.feature_extractor(engine.backend.device)
        self.latent_shape = cfg.latent_shape

    def windows(self, samples: np.ndarray, start: int, stop: int, fps: float, cache: dict, deadline: float):
        """What `submit` needs for frames [start, stop) (a feature-encoder call: run off the event loop)."""
        return self.window.windows(samples, start, stop, fps, self.features, cache, deadline=deadline)

    def submit(self, avatar: AvatarState, frames: range, windows: np.ndarray, noise: np.ndarray, gen,
               deadline, loop: asyncio.AbstractEventLoop) -> list[tuple[int, asyncio.Future]]:
        jobs = [FrameJob(avatar=avatar, pose=avatar.pose_index(i), windows=windows[k], noise=noise, steps=gen.steps,
                         guidance=gen.guidance, future=loop.create_future(), loop=loop, deadline=deadline(i))
                for k, i in enumerate(frames)]
        self.engine.submit(jobs)
        return [(j.pose, j.future) for j in jobs]

    def finish(self, avatar: AvatarState, pose: int, region: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]]:
        return avatar.composite(pose, region)

    def warmup(self, avatar: AvatarState, steps: int, guidance: float) -> None:
        self.engine.warmup(avatar, steps, guidance)


# Warp faces kept per avatar, one per pose of its idle loop (about 0.35 MB each at 256 px, built in about
# 5 ms on first use). An idle video has up to max_idle_video_seconds x 25 poses and the server's avatar
# cache counts only an avatar's arrays, so without a cap every pose ever shown would stay in memory; a
# longer loop rebuilds a few poses at each turn of its ping-pong.
WARP_FACES_PER_AVATAR = 64


class LruCache:
    """At most `capacity` entries, the least recently used dropped first; safe across worker threads."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._items: collections.OrderedDict = collections.OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get_or_build(self, key, build):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = build()  # outside the lock, so one slow build holds up no other key (a race builds twice)
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return value


class WarpRenderer:
    name = "warp"

    def __init__(self, motion, features, observer=None, warp=None):
        """motion: runtime.warp_renderer.MotionModel; features: its audio feature extractor; observer: where
        frames are counted (the engine's EngineObserver, server/metrics.py); warp: face/warp.py WarpConfig
        (its mouth_fill says how an opening mouth's inside is drawn)."""
        from avatar_service.face.warp import WarpConfig

        self.motion = motion
        self.warp = warp or WarpConfig()
        self.window: WindowSpec = motion.predictor.config.window
        self.features = features
        self.observer = observer

    def windows(self, samples: np.ndarray, start: int, stop: int, fps: float, cache: dict, deadline: float):
        """The frames' motion (K per frame), read out with their feature windows (off the event loop)."""
        t0 = time.perf_counter()
        windows = self.window.windows(samples, start, stop, fps, self.features, cache, deadline=deadline)
        t1 = time.perf_counter()
        motion = self.motion.predict(windows, samples, start, stop, fps)
        return motion, time.perf_counter() - t1

    def submit(self, avatar: AvatarState, frames: range, windows, noise: np.ndarray, gen,
               deadline, loop: asyncio.AbstractEventLoop) -> list[tuple[int, asyncio.Future]]:
        motion, dt = windows  # from windows(): a linear read-out, microseconds a frame, so no engine round trip
        out = []
        for i, m in zip(frames, motion):
            fut = loop.create_future()
            fut.set_result((m, dt * 1000 / len(frames)))
            out.append((avatar.pose_index(i), fut))
        if self.observer and len(frames):
            self.observer.on_batch(len(frames), dt, [dt] * len(frames))
        return out

    def finish(self, avatar: AvatarState, pose: int, motion: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]]:
        res = self.face(avatar, pose).render(motion)
        return res.frame, res.rect

    def face(self, avatar: AvatarState, pose: int):
        from avatar_service.runtime.warp_renderer import WarpFace

        if avatar.meshes is None:
            raise RuntimeError("this avatar has no face mesh (made without mediapipe): recreate it")
        faces = avatar.derived.setdefault("warp", LruCache(WARP_FACES_PER_AVATAR))
        # a pose's triangulation is built on its first frame, and again if it has been dropped since
        return faces.get_or_build(pose, lambda: WarpFace(avatar.textures[pose], avatar.meshes[pose], self.motion.basis,
                                                         self.warp))

    def warmup(self, avatar: AvatarState, steps: int, guidance: float) -> None:
        """The audio encoder and one frame of the whole warp path (triangulation, warp, interior)."""
        motion, _ = self.windows(np.zeros(self.features.sample_rate_hz, np.float32), 0, 1, 25.0, {}, 0.0)
        self.finish(avatar, 0, motion[0])
