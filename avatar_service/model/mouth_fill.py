"""Latent diffusion for the inside of an opening mouth (issue 19, design item 3): the one place the warp
renderer cannot take pixels from the person.

The DiffTalk-style denoiser (model/networks.py `Denoiser`) on a 64 px mouth crop (face/mouth_crop.py),
in the latent space of the generator's own trained autoencoder (copied in, frozen), conditioned on:
  pose input    the latent of the *warped* crop (the reference's pixels moved to the target geometry,
                with the plain interior drawn where it opened wider), also the base of the residual the
                sampler draws, so a short img2img chain starts from it (SamplingConfig.start_strength);
  reference     the latent of the reference's own mouth crop (its teeth and lips, when they show);
  geometry      the target lips (mesh lip contours, crop-relative) as a lip map (LipMapConfig) and as
                two cross-attention tokens. The geometry is what speech predicts (model/motion.py), so
                it stands in for audio tokens here; see docs/renderer.md.
A saved fill is a folder like every model's (model/checkpoint.py): config.json + model.safetensors.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import pathlib

import torch
from torch import nn

from avatar_service.face.align import FaceLayout
from avatar_service.face.mouth_crop import MouthCropConfig
from avatar_service.model.checkpoint import load_config, load_weights, save_module
from avatar_service.model.config import (AudioEncoderConfig, AutoencoderConfig, DenoiserConfig, GeneratorConfig,
                                         LipMapConfig, SamplingConfig, ServingConfig)
from avatar_service.model.generator import LatentCodec
from avatar_service.model.networks import N_LIPS, Denoiser

CONFIG_KEY = "mouth_fill"


@dataclasses.dataclass(frozen=True)
class MouthFillConfig:
    name: str = "avatarlab-mouth-fill"
    crop: MouthCropConfig = MouthCropConfig()
    # The networks as a GeneratorConfig, so the generator's building blocks build them: the layout is
    # the square crop, the autoencoder must match the generator's whose weights are copied in, and the
    # sampling settings (steps, img2img strength) are the serving ones.
    networks: GeneratorConfig = GeneratorConfig(
        name="avatarlab-mouth-fill",
        layout=FaceLayout(crop_px=64, region_top=0.0),
        autoencoder=AutoencoderConfig(),
        audio=AudioEncoderConfig(token_dim=64, lip_components=0),
        denoiser=DenoiserConfig(block_out_channels=(32, 64), attention_head_dim=16, norm_num_groups=16,  # 0.8M, ~12 ms a step
                                residual_scale=1.0, lip_map=LipMapConfig(enabled=True)),
        # 2 DDIM steps from 0.3 of the schedule: on the held-out fill sheets 0.3 drew closer to the real
        # interior than 0.5 (L1 39.0 vs 40.2) and 1 step (40.3); docs/renderer.md
        serving=ServingConfig(sampling=SamplingConfig(default_steps=2, start_strength=0.3)),
    )
    geometry_tokens: int = 2

    def to_dict(self) -> dict:
        return {"name": self.name, "crop": dataclasses.asdict(self.crop), "networks": self.networks.to_dict(),
                "geometry_tokens": self.geometry_tokens}

    @classmethod
    def from_dict(cls, d: dict) -> "MouthFillConfig":
        unknown = set(d) - {"name", "crop", "networks", "geometry_tokens"}
        if unknown:
            raise ValueError(f"unknown MouthFillConfig keys {sorted(unknown)}: config from a newer version?")
        return cls(name=d["name"], crop=MouthCropConfig(**d["crop"]), networks=GeneratorConfig.from_dict(d["networks"]),
                   geometry_tokens=int(d["geometry_tokens"]))

    @classmethod
    def tiny(cls) -> "MouthFillConfig":
        """Same architecture, a few thousand parameters: for tests."""
        return cls(name="avatarlab-mouth-fill-tiny", crop=MouthCropConfig(px=32), networks=GeneratorConfig(
            name="avatarlab-mouth-fill-tiny", layout=FaceLayout(crop_px=32, region_top=0.0),
            autoencoder=AutoencoderConfig(block_out_channels=(8, 16, 16), latent_channels=4, norm_num_groups=4),
            audio=AudioEncoderConfig(token_dim=16, lip_components=0),
            denoiser=DenoiserConfig(block_out_channels=(16, 32), attention_head_dim=8, norm_num_groups=4,
                                    residual_scale=1.0, lip_map=LipMapConfig(enabled=True)),
            serving=ServingConfig(sampling=SamplingConfig(default_steps=2, start_strength=0.5))))


def sample_fill(config: MouthFillConfig, predict, z_warp: torch.Tensor, z_ref: torch.Tensor, lip_points: torch.Tensor,
                noise: torch.Tensor, steps: int | None = None) -> torch.Tensor:
    """img2img from the warped crop's latent: `steps` DDIM steps from `start_strength` of the schedule,
    `predict` being the model's (torch, or its ONNX graph in runtime/mouth_fill.py). noise (B, C, h, w) is
    fixed per face by the caller, so neighbouring frames differ only where the geometry does (no
    flicker). Returns z0 (B, C, h, w)."""
    net = config.networks
    sched, timesteps, scale = _schedule(net, steps or net.serving.sampling.default_steps)
    x = noise * scale
    b = len(z_warp)
    for t in timesteps:
        v = predict(sched.scale_model_input(x, t), t.expand(b), z_warp, z_ref, lip_points)
        x = sched.step(v, t, x).prev_sample
    return net.denoiser.to_latent(x, z_warp)


@functools.lru_cache(maxsize=8)
def _schedule(net: GeneratorConfig, steps: int):
    """(scheduler, timesteps, start noise scale), made once per config and step count: building a
    diffusers scheduler costs a few ms, a fifth of a fill. DDIM keeps no state between samples."""
    sched = net.serving.sampling.make_scheduler(net.denoiser)
    timesteps, scale = net.serving.sampling.timesteps(sched, steps)
    return sched, timesteps, scale


class GeometryTokens(nn.Module):
    """Target lip contours (B, 40, 2), crop-relative, -> (B, n, D) cross-attention tokens."""

    def __init__(self, dim: int, n: int):
        super().__init__()
        self.n, self.dim = n, dim
        self.net = nn.Sequential(nn.Linear(2 * N_LIPS, 4 * dim), nn.SiLU(), nn.Linear(4 * dim, n * dim))
        self.norm = nn.LayerNorm(dim)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        centred = points - points.mean(dim=1, keepdim=True)  # shape here; the map says where
        return self.norm(self.net(centred.flatten(1) * 4.0).reshape(-1, self.n, self.dim))


class MouthFillModel(LatentCodec):
    def __init__(self, config: MouthFillConfig):
        super().__init__(config.networks)
        self.config = config
        self.denoiser = Denoiser(config.networks)
        self.geometry = GeometryTokens(config.networks.audio.token_dim, config.geometry_tokens)

    def make_scheduler(self):
        return self.config.networks.serving.sampling.make_scheduler(self.config.networks.denoiser)

    def predict(self, x_t, t, z_warp, z_ref, lip_points):
        """The denoiser's v-prediction for residual sample x_t at timesteps t (B,)."""
        return self.denoiser(x_t, t, z_warp, z_ref, self.geometry(lip_points), lip_points)

    @torch.no_grad()
    def sample(self, z_warp: torch.Tensor, z_ref: torch.Tensor, lip_points: torch.Tensor, noise: torch.Tensor,
               steps: int | None = None) -> torch.Tensor:
        return sample_fill(self.config, self.predict, z_warp, z_ref, lip_points, noise, steps)

    # -- persistence ------------------------------------------------------------------------------
    def save_pretrained(self, path: str | os.PathLike, dtype: torch.dtype | None = torch.float16) -> pathlib.Path:
        """fp16 by default: the file stays small enough to embed (loaded back into fp32)."""
        return save_module(self, path, CONFIG_KEY, self.config.to_dict(), self.config.name, dtype)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, device: str = "cpu") -> "MouthFillModel":
        model = cls(MouthFillConfig.from_dict(load_config(path, CONFIG_KEY, "AvatarLab mouth fill")))
        return load_weights(model, path, device)

    def take_autoencoder(self, codec: LatentCodec) -> None:
        """Copy a trained generator's autoencoder and latent statistics (their configs must match)."""
        own = {k: v for k, v in codec.state_dict().items() if k.startswith(("autoencoder.", "latent_"))}
        self.load_state_dict(own, strict=False)
        for p in self.autoencoder.parameters():
            p.requires_grad_(False)
