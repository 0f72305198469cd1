"""`FaceGenerator`: the trained networks plus their config, saved and loaded like a diffusers model.

A saved model is a folder with `config.json` (the frozen architecture), `serving.json` (the serving
settings, ServingConfig) and `model.safetensors` (all weights, latent statistics included).
`from_pretrained(save_pretrained(x))` is bit-exact, config included.
"""
from __future__ import annotations

import dataclasses
import json
import os
import pathlib

import torch
from torch import nn

from avatar_service.model.checkpoint import load_config, load_weights, save_module
from avatar_service.model.config import GeneratorConfig

SERVING_NAME = "serving.json"


def save_serving(path: pathlib.Path, config: GeneratorConfig) -> None:
    (pathlib.Path(path) / SERVING_NAME).write_text(
        json.dumps(dataclasses.asdict(config.serving), indent=2, sort_keys=True))


def load_generator_config(path: str | os.PathLike) -> GeneratorConfig:
    """A model folder's config.json and, beside it, serving.json (absent in folders written before it
    existed, whose config.json holds the serving settings)."""
    arch = load_config(path, "generator", "AvatarLab model")
    serving = pathlib.Path(path) / SERVING_NAME
    return GeneratorConfig.from_dict(arch, json.loads(serving.read_text()) if serving.exists() else None)
from avatar_service.model.networks import AudioEncoder, Denoiser, build_autoencoder


class LatentCodec(nn.Module):
    """The image autoencoder with the latent statistics it was normalised by (shared by the generator
    and the inner-mouth fill, model/mouth_fill.py, which reuses the generator's trained autoencoder)."""

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        self.autoencoder = build_autoencoder(config)
        # Latents are scaled to unit variance with statistics measured after autoencoder training.
        self.register_buffer("latent_mean", torch.zeros(config.autoencoder.latent_channels))
        self.register_buffer("latent_std", torch.ones(config.autoencoder.latent_channels))

    def encode(self, region: torch.Tensor) -> torch.Tensor:
        """region (B, 3, H, W) in [-1, 1] -> normalised latent (B, C, H/f, W/f) (posterior mean)."""
        z = self.autoencoder.encode(region).latent_dist.mean
        return (z - self.latent_mean[:, None, None]) / self.latent_std[:, None, None]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """normalised latent (B, C, h, w) -> region (B, 3, H, W), roughly [-1, 1]."""
        z = z * self.latent_std[:, None, None] + self.latent_mean[:, None, None]
        return self.autoencoder.decode(z).sample


class FaceGenerator(LatentCodec):
    def __init__(self, config: GeneratorConfig):
        super().__init__(config)
        self.config = config
        self.audio_encoder = AudioEncoder(config)
        self.denoiser = Denoiser(config)

    # -- stages, each with its tensor contract -------------------------------------------------

    def audio(self, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """feature windows (B, K, dims, M) -> tokens (B, T, D) and, with a lip map, the predicted lip
        landmark offsets (B, 40, 2) in crop widths (None without)."""
        return self.audio_encoder(windows)

    def null_tokens(self, batch: int) -> torch.Tensor:
        return self.audio_encoder.null_tokens.expand(batch, -1, -1)

    def denoise(self, z_t, t, z_masked, z_ref, tokens, lip_points=None):
        return self.denoiser(z_t, t, z_masked, z_ref, tokens, lip_points)

    @property
    def lip_rest(self) -> torch.Tensor | None:
        """(40, 2) average lip landmarks, crop-relative: the anchor for a face whose lips are not found."""
        return self.audio_encoder.lip_rest if self.config.denoiser.lip_map.enabled else None

    def make_scheduler(self, kind: str | None = None):
        """The sampling config's scheduler for this denoiser (SamplingConfig.make_scheduler)."""
        return self.config.serving.sampling.make_scheduler(self.config.denoiser, kind)

    # -- persistence ------------------------------------------------------------------------------
    def save_pretrained(self, path: str | os.PathLike, dtype: torch.dtype | None = None) -> pathlib.Path:
        """`dtype=torch.float16` halves the file (weights are loaded back into fp32 modules)."""
        path = save_module(self, path, "generator", self.config.architecture_dict(), self.config.name, dtype)
        save_serving(path, self.config)
        return path

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, device: str = "cpu") -> "FaceGenerator":
        model = cls(load_generator_config(path))
        return load_weights(model, path, device)

    @classmethod
    def random(cls, config: GeneratorConfig, seed: int = 0) -> "FaceGenerator":
        torch.manual_seed(seed)
        return cls(config).eval()
