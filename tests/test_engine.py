"""The batching engine on its own (tiny model, real forward passes): what a batch of jobs returns,
cancelled and failing jobs, and the shared Batcher's earliest-deadline-first order."""
from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from avatar_service.batching import Batcher
from avatar_service.model import FaceGenerator, GeneratorConfig
from avatar_service.runtime.avatar import AvatarState
from avatar_service.runtime.backend import TorchBackend
from avatar_service.runtime.engine import Engine, FrameJob
from avatar_service.runtime.sampler import sample_regions


@pytest.fixture(scope="module")
def backend():
    return TorchBackend(FaceGenerator.random(GeneratorConfig.tiny(), seed=0))


def avatar(cfg, seed):
    rng = np.random.default_rng(seed)
    s = cfg.layout.crop_px
    return AvatarState(textures=rng.integers(0, 256, (2, 64, 64, 3), np.uint8),
                       crop_to_texture=np.repeat(np.array([[[64 / s, 0, 0], [0, 64 / s, 0]]], np.float32), 2, 0),
                       z_masked=rng.standard_normal((2, *cfg.latent_shape)).astype(np.float32),
                       z_ref=rng.standard_normal(cfg.latent_shape).astype(np.float32), layout=cfg.layout)


def jobs_for(cfg, loop, n, seed=0, steps=2):
    rng = np.random.default_rng(seed)
    k, m = 2 * cfg.window.neighbour_radius + 1, 2 * cfg.window.mel_radius + 1
    a = [avatar(cfg, 1), avatar(cfg, 2)]
    return [FrameJob(avatar=a[i % 2], pose=i % 2, windows=rng.standard_normal((k, cfg.feature_dims, m)).astype(np.float32),
                     noise=rng.standard_normal(cfg.latent_shape).astype(np.float32), steps=steps, guidance=1.0,
                     future=loop.create_future(), loop=loop, deadline=float(i)) for i in range(n)]


def test_a_batch_returns_each_jobs_own_region(backend):
    cfg = backend.config

    async def main():
        engine = Engine(backend, max_batch=8, batch_wait_ms=20)
        jobs = jobs_for(cfg, asyncio.get_running_loop(), 4)
        engine.submit(jobs)
        out = await asyncio.gather(*(j.future for j in jobs))
        engine.close()
        return jobs, out, engine

    jobs, out, engine = asyncio.run(main())
    tokens, _ = backend.audio(np.stack([j.windows for j in jobs]))
    lips = None
    if backend.lip_rest is not None:
        _, offsets = backend.audio(np.stack([j.windows for j in jobs]))
        lips = backend.lip_rest[None] + offsets
    want = sample_regions(backend, np.stack([j.noise for j in jobs]), np.stack([j.avatar.z_masked[j.pose] for j in jobs]),
                          np.stack([j.avatar.z_ref for j in jobs]), tokens, 2, 1.0, lip_points=lips)
    assert engine.stats.frames == 4 and engine.stats.batches == 1  # one batch of all four
    for (region, ms), w in zip(out, want):
        assert region.shape == (3, *cfg.layout.region_shape) and ms > 0
        np.testing.assert_allclose(region, w, atol=1e-5)
    assert not np.allclose(out[0][0], out[1][0])


def test_cancelled_jobs_are_dropped_and_a_failing_one_fails_alone(backend, monkeypatch):
    import avatar_service.runtime.engine as engine_mod
    cfg = backend.config
    real = engine_mod.sample_regions

    def failing(b, noise, *a, **kw):
        if (noise[:, 0, 0, 0] == 99).any():
            raise FloatingPointError("injected")
        return real(b, noise, *a, **kw)
    monkeypatch.setattr(engine_mod, "sample_regions", failing)

    async def main():
        engine = Engine(backend, max_batch=8, batch_wait_ms=20)
        jobs = jobs_for(cfg, asyncio.get_running_loop(), 4)
        jobs[1].future.cancel()
        jobs[2].noise = jobs[2].noise.copy()
        jobs[2].noise[0, 0, 0] = 99
        engine.submit(jobs)
        results = await asyncio.gather(*(j.future for j in jobs), return_exceptions=True)
        engine.close()
        return results, engine

    results, engine = asyncio.run(main())
    assert isinstance(results[1], asyncio.CancelledError)
    assert isinstance(results[2], RuntimeError) and "frame generation failed" in str(results[2])
    assert all(isinstance(r, tuple) for r in (results[0], results[3]))
    assert engine.stats.errors == 1 and engine.stats.frames == 2


def test_batcher_takes_the_earliest_deadline_first_and_batches_by_key():
    ran, gate = [], threading.Event()

    def run(key, items):
        gate.wait(10)
        ran.append((key, [i for i, _ in items]))

    b = Batcher(run, name="test-batcher", max_batch=3, key=lambda it: it[1], deadline=lambda it: it[0])
    b.submit([(100, "x")])  # occupies the worker until the gate opens; the rest queue up meanwhile
    while b.depth:
        pass
    b.submit([(5, "a"), (1, "b"), (3, "a"), (2, "a"), (4, "a"), (0.5, "a")])
    gate.set()
    b.close()
    assert ran == [("x", [100]), ("a", [0.5, 2, 3]), ("b", [1]), ("a", [4, 5])]
    assert b.calls == 4
