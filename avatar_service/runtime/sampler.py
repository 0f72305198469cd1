"""Few-step sampling of region latents with a diffusers scheduler, classifier-free guidance on audio.

Symbols (DiffTalk eq. 3-4): z_T ~ N(0, I) the start noise, shared by every frame of a session so
neighbouring frames differ only where the audio does (no flicker); C = {z_masked, z_ref, audio}.
"""
from __future__ import annotations

import numpy as np
import torch

from avatar_service.runtime.backend import Backend


def sample_latents(backend: Backend, noise: np.ndarray, z_masked: np.ndarray, z_ref: np.ndarray,
                   tokens: np.ndarray, steps: int, guidance: float, scheduler: str | None = None,
                   lip_points: np.ndarray | None = None) -> np.ndarray:
    """All inputs batched on axis 0 (B, ...); lip_points (B, 40, 2) for models with a lip map (the
    unconditional half of guidance keeps them: they are geometry, the guidance is on audio).
    Returns z_0 (B, C, h, w)."""
    sched = backend.make_scheduler(scheduler)
    timesteps, scale = backend.config.sampling.timesteps(sched, steps)
    x = torch.from_numpy(noise.astype(np.float32)) * scale
    b = len(noise)
    guided = guidance != 1.0
    if guided:  # one batched call for conditional and unconditional halves
        z_masked2 = np.concatenate([z_masked, z_masked])
        z_ref2 = np.concatenate([z_ref, z_ref])
        tokens2 = np.concatenate([tokens, backend.null_tokens(b)])
        lips2 = None if lip_points is None else np.concatenate([lip_points, lip_points])
    for t in timesteps:
        xin = sched.scale_model_input(x, t).numpy()
        if guided:
            out = backend.denoise(np.concatenate([xin, xin]), np.full(2 * b, int(t)), z_masked2, z_ref2, tokens2, lips2)
            cond, uncond = out[:b], out[b:]
            out = uncond + guidance * (cond - uncond)
        else:
            out = backend.denoise(xin, np.full(b, int(t)), z_masked, z_ref, tokens, lip_points)
        x = sched.step(torch.from_numpy(out), t, x).prev_sample
    return backend.config.denoiser.to_latent(x.numpy(), z_ref)
