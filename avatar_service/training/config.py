"""Training options: frozen data saved as JSON in the run folder. Architecture lives in the
model's own config (GeneratorConfig, SyncConfig); these are only how a stage is optimised."""
from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    steps: int = 20000  # total optimizer steps; a resumed run continues up to this
    batch_size: int = 32  # per process
    lr: float = 2e-4
    weight_decay: float = 0.01
    warmup_steps: int = 500  # linear warm-up, then constant (resume-safe: no dependence on total)
    grad_clip: float = 1.0
    seed: int = 0
    log_every: int = 25
    sample_every: int = 1000  # sample grid PNG
    ckpt_every: int = 1000
    keep_checkpoints: int = 2
    bf16: bool = False  # torch.autocast bf16 (CUDA); fp32 otherwise
    # autoencoder
    kl_weight: float = 1e-6  # per pixel, as LDM's KL-f8 (KL summed, divided by pixels)
    edge_weight: float = 0.5  # L1 on image gradients: keeps teeth and lip edges sharp
    ae_mask_weight: float = 4.0  # loss weight of pixels inside the mouth mask (the only ones shown)
    faces_fraction: float = 0.3  # share of each batch drawn from still face photos (autoencoder; denoiser with --faces)
    stats_batches: int = 50  # batches measured for latent mean/std after training
    # denoiser
    cfg_drop: float = 0.1  # p(audio replaced by null tokens), for classifier-free guidance
    mask_weight: float = 2.0  # loss weight inside the (downsampled) mask; 1 outside
    residual: bool = True  # diffuse z0 - z_ref (scaled), see DenoiserConfig.residual_scale
    lip_weight: float = 0.2  # weight of the audio -> lip-coefficient regression loss
    lip_noise: float = 0.1  # std of noise on the measured lip coefficients the denoiser is shown
    # Each sample is stretched about the mouth by up to this much (x and y drawn apart, on the cached
    # latents and the lip points alike): with ~40 people a denoiser learns each one's mouth width
    # instead of copying it from the reference and the lip map; unseen faces then get a generic mouth.
    # 0 = off, the shipped recipe; 0.15 was tried with a lip map (docs/evaluation.md).
    shape_aug: float = 0.0
    # Each reference is moved by up to this many pixels (x and y drawn apart) before it is encoded, so
    # the mouth's place has to come from the pose frame: trained on references of the same clip, the
    # denoiser keeps the mouth where the reference has it and barely follows the head (measured: the
    # drawn mouth moved 0.1-0.5 px per px the real one moved sideways). 0 = off (the first shipped recipe).
    ref_shift: float = 0.0
    ema_decay: float = 0.999  # 0 disables; samples and the saved model use the EMA weights
    sample_steps: int = 4  # DDIM steps for sample grids and the final video
    video_seconds: float = 4.0
    # sync expert
    negative_min_shift: int = 5  # off-sync negatives are at least this many frames away

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def save(self, path: pathlib.Path) -> None:
        path.write_text(json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True))


# Per-stage defaults; CLI flags override them.
DEFAULTS = {
    "autoencoder": TrainConfig(steps=30000, batch_size=32, lr=2e-4),
    "denoiser": TrainConfig(steps=100000, batch_size=64, lr=1e-4),
    "sync": TrainConfig(steps=30000, batch_size=64, lr=1e-4, warmup_steps=200),
    "mouth-fill": TrainConfig(steps=6000, batch_size=64, lr=3e-4, warmup_steps=200, mask_weight=4.0,
                              sample_every=1000, ckpt_every=1000, log_every=50),
}
