"""Few-step sampling of region latents with a diffusers scheduler, classifier-free guidance on audio.

Symbols (DiffTalk eq. 3-4): z_T ~ N(0, I) the start noise, shared by every frame of a session so
neighbouring frames differ only where the audio does (no flicker); C = {z_masked, z_ref, audio}.

The latent stays on the backend's device from the start noise to the decoded region: the conditioning
is uploaded once per batch (Backend.condition) and every step reads it there; only the decoded regions
come back (on a GPU, per-step round trips were the bottleneck).
"""
from __future__ import annotations

import numpy as np

from avatar_service.runtime.backend import Backend


def _sample(backend: Backend, noise, z_masked, z_ref, tokens, steps, guidance, scheduler, lip_points):
    cfg = backend.config
    sched = cfg.serving.sampling.make_scheduler(cfg.denoiser, scheduler)
    timesteps, scale = cfg.serving.sampling.timesteps(sched, steps)
    guided = guidance != 1.0  # one batched call for conditional and unconditional halves
    cond = backend.condition(z_masked, z_ref, tokens, lip_points, guided)
    x = backend.latent(noise) * scale
    b = len(noise)
    for t in timesteps:
        out = backend.denoise_step(sched.scale_model_input(x, t), int(t), cond)
        if guided:
            cond_out, uncond = out[:b], out[b:]
            out = uncond + guidance * (cond_out - uncond)
        x = sched.step(out, t, x).prev_sample
    return cfg.denoiser.to_latent(x, backend.latent(z_ref))


def sample_latents(backend: Backend, noise: np.ndarray, z_masked: np.ndarray, z_ref: np.ndarray,
                   tokens: np.ndarray, steps: int, guidance: float, scheduler: str | None = None,
                   lip_points: np.ndarray | None = None) -> np.ndarray:
    """All inputs batched on axis 0 (B, ...); lip_points (B, 40, 2) for models with a lip map (the
    unconditional half of guidance keeps them: they are geometry, the guidance is on audio).
    Returns z_0 (B, C, h, w)."""
    return backend.host(_sample(backend, noise, z_masked, z_ref, tokens, steps, guidance, scheduler, lip_points))


def sample_regions(backend: Backend, noise: np.ndarray, z_masked: np.ndarray, z_ref: np.ndarray,
                   tokens: np.ndarray, steps: int, guidance: float, scheduler: str | None = None,
                   lip_points: np.ndarray | None = None) -> np.ndarray:
    """As sample_latents, then decoded on the device: the regions (B, 3, H, W) in about [-1, 1]."""
    z0 = _sample(backend, noise, z_masked, z_ref, tokens, steps, guidance, scheduler, lip_points)
    return backend.decode_latent(z0)
