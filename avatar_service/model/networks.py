"""The three networks of the generator (DiffTalk, CVPR 2023, section 3):

| paper            | here                | role                                                        |
|------------------|---------------------|-------------------------------------------------------------|
| E_I / D_I        | `build_autoencoder` | image autoencoder: mouth region <-> latent z (factor 8)     |
| AudioNet+AttNet  | `AudioEncoder`      | mel windows of 2r+1 neighbouring frames -> smooth tokens    |
| M (denoiser)     | `Denoiser`          | eps/v from z_t, masked-frame latent, reference latent, audio |
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, UNet2DConditionModel
from torch import nn

from avatar_service.face.lips import LIP_INDICES, OUTER_LIP_MASK
from avatar_service.model.config import GeneratorConfig

N_LIPS = len(LIP_INDICES)


def build_autoencoder(cfg: GeneratorConfig) -> AutoencoderKL:
    a = cfg.autoencoder
    n = len(a.block_out_channels)
    h, w = cfg.layout.region_shape
    return AutoencoderKL(
        in_channels=3, out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * n, up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=a.block_out_channels, layers_per_block=a.layers_per_block,
        latent_channels=a.latent_channels, norm_num_groups=a.norm_num_groups,
        sample_size=max(h, w), mid_block_add_attention=False,  # attention at 8x16 buys little and costs export ops
    )


class AudioEncoder(nn.Module):
    """DiffTalk's AudioNet (per-frame conv over a mel window) + AudioAttNet (attention-weighted
    smoothing over neighbouring frames). Returns tokens for the denoiser's cross-attention:
    the smoothed feature first, then each neighbour's own feature."""

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        a, n_mels = cfg.audio, cfg.feature_dims
        k = 2 * cfg.window.neighbour_radius + 1
        self.audionet = nn.Sequential(
            nn.Conv1d(n_mels, a.hidden, 3, padding=1), nn.LeakyReLU(0.02),
            nn.Conv1d(a.hidden, a.hidden, 3, stride=2, padding=1), nn.LeakyReLU(0.02),
            nn.Conv1d(a.hidden, a.hidden, 3, stride=2, padding=1), nn.LeakyReLU(0.02),
        )
        self.audionet_out = nn.Linear(a.hidden, a.hidden)
        self.attnet = nn.Sequential(
            nn.Conv1d(a.hidden, 16, 3, padding=1), nn.LeakyReLU(0.02),
            nn.Conv1d(16, 1, 3, padding=1),
        )
        self.position = nn.Parameter(torch.zeros(1, k + 1, a.hidden))
        self.to_tokens = nn.Sequential(nn.Linear(a.hidden, a.token_dim), nn.LayerNorm(a.token_dim))
        self.lip_components = a.lip_components
        self.articulation = cfg.serving.articulation
        if a.lip_components:
            self.lip_head = nn.Sequential(nn.Linear((k + 1) * a.hidden, a.hidden), nn.LeakyReLU(0.02),
                                          nn.Linear(a.hidden, a.lip_components))
            self.lip_embed = nn.Sequential(nn.Linear(a.lip_components, a.token_dim), nn.LayerNorm(a.token_dim))
        self.lip_map = cfg.denoiser.lip_map.enabled
        if self.lip_map:
            if not a.lip_components:
                raise ValueError("denoiser.lip_map needs audio.lip_components > 0: the map draws the predicted lip shape")
            # Set by the training stage from its data: the PCA that turns coefficients into landmark offsets
            # (crop widths), and the average lip landmarks (crop-relative), for faces where none are found.
            self.register_buffer("lip_basis", torch.zeros(2 * N_LIPS, a.lip_components))
            self.register_buffer("lip_std", torch.ones(a.lip_components))
            self.register_buffer("lip_rest", torch.zeros(N_LIPS, 2))
        self.num_tokens = k + 1 + (1 if a.lip_components else 0)
        # Classifier-free guidance: the "no audio" condition, learned while audio is dropped in training.
        self.null_tokens = nn.Parameter(torch.zeros(1, self.num_tokens, a.token_dim))

    def encode(self, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """windows (B, K, n_mels, M) -> audio tokens (B, K+1, token_dim) and predicted lip
        coefficients (B, lip_components) (None without a lip head)."""
        b, k, c, m = windows.shape
        f = self.audionet(windows.reshape(b * k, c, m)).mean(dim=2)  # (B*K, hidden)
        f = self.audionet_out(f).reshape(b, k, -1)  # (B, K, hidden)
        w = torch.softmax(self.attnet(f.transpose(1, 2)).squeeze(1), dim=1)  # (B, K)
        smooth = (w.unsqueeze(-1) * f).sum(dim=1, keepdim=True)  # (B, 1, hidden)
        h = torch.cat([smooth, f], dim=1) + self.position
        lips = self.lip_head(h.flatten(1)) if self.lip_components else None
        return self.to_tokens(h), lips

    def lip_offsets(self, lips: torch.Tensor) -> torch.Tensor:
        """Whitened coefficients (B, k) -> lip landmark offsets from the rest shape (B, 40, 2), crop widths."""
        return ((lips * self.lip_std) @ self.lip_basis.T).reshape(-1, N_LIPS, 2)  # -1: a dynamic batch in ONNX

    def tokens(self, audio_tokens: torch.Tensor, lips: torch.Tensor | None) -> torch.Tensor:
        """Audio tokens plus the lip-shape token of `lips` (B, lip_components) -> (B, num_tokens, D)."""
        if not self.lip_components:
            return audio_tokens
        return torch.cat([audio_tokens, self.lip_embed(lips)[:, None]], dim=1)

    def forward(self, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """windows (B, K, n_mels, M) -> tokens (B, num_tokens, token_dim) with the lips predicted from
        audio (times `articulation`), and (with a lip map) their landmark offsets (B, 40, 2) for `Denoiser`'s `lip_points`."""
        audio, lips = self.encode(windows)
        if lips is not None and self.articulation != 1.0:
            lips = lips * self.articulation
        return self.tokens(audio, lips), (self.lip_offsets(lips) if self.lip_map else None)


class LipMap(nn.Module):
    """Lip landmarks (B, 40, 2), crop-relative (x, y in [0, 1]), -> (B, channels, h, w) on the latent
    grid: Gaussians at 1/downsample resolution (max over the outer and over the inner lip points),
    then space-to-depth. Non-finite points draw nothing."""

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        m, f = cfg.denoiser.lip_map, cfg.autoencoder.downsample
        h, w = cfg.layout.region_shape
        self.fold = f // m.downsample
        self.crop_px, self.top = cfg.layout.crop_px, cfg.layout.region_rows[0]
        self.inv_two_var = 1.0 / (2 * m.sigma_px ** 2)
        ys = (torch.arange(h // m.downsample) + 0.5) * m.downsample
        xs = (torch.arange(w // m.downsample) + 0.5) * m.downsample
        self.register_buffer("ys", ys, persistent=False)
        self.register_buffer("xs", xs, persistent=False)
        outer = torch.tensor(OUTER_LIP_MASK, dtype=torch.float32)
        self.register_buffer("groups", torch.stack([outer, 1 - outer])[None, :, :, None, None], persistent=False)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        px = points[..., 0] * self.crop_px  # (B, 40) region pixels
        py = points[..., 1] * self.crop_px - self.top
        far = ~(torch.isfinite(px) & torch.isfinite(py))
        px, py = px.masked_fill(far, -1e4), py.masked_fill(far, -1e4)
        dy = (self.ys[None, None, :] - py[..., None]) ** 2  # (B, 40, H')
        dx = (self.xs[None, None, :] - px[..., None]) ** 2  # (B, 40, W')
        g = torch.exp(-(dy[..., :, None] + dx[..., None, :]) * self.inv_two_var)  # (B, 40, H', W')
        # max over each group's points (weights 0/1: g >= 0), as plain ops for the ONNX export
        return F.pixel_unshuffle((g[:, None] * self.groups).amax(dim=2), self.fold)


class Denoiser(nn.Module):
    """M(z_t, t | z_masked, z_ref, audio): the three latents are stacked on channels (pose and
    identity), audio enters through cross-attention."""

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        d, c = cfg.denoiser, cfg.autoencoder.latent_channels
        n = len(d.block_out_channels)
        _, lh, lw = cfg.latent_shape
        self.lip_map = LipMap(cfg) if d.lip_map.enabled else None
        self.unet = UNet2DConditionModel(
            sample_size=(lh, lw), in_channels=3 * c + d.lip_map.channels(cfg.autoencoder.downsample), out_channels=c,
            down_block_types=("CrossAttnDownBlock2D",) * (n - 1) + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * (n - 1),
            block_out_channels=d.block_out_channels, layers_per_block=d.layers_per_block,
            cross_attention_dim=cfg.audio.token_dim, attention_head_dim=d.attention_head_dim,
            norm_num_groups=d.norm_num_groups,
        )

    def forward(self, z_t: torch.Tensor, t: torch.Tensor, z_masked: torch.Tensor, z_ref: torch.Tensor,
                tokens: torch.Tensor, lip_points: torch.Tensor | None = None) -> torch.Tensor:
        """z_t, z_masked, z_ref (B, C, h, w); t (B,); tokens (B, T, D); lip_points (B, 40, 2) crop-relative
        where the lips should be (models with a lip map) -> prediction (B, C, h, w)."""
        parts = [z_t, z_masked, z_ref]
        if self.lip_map is not None:
            if lip_points is None:
                raise ValueError("this model draws from a lip map: denoise needs lip_points")
            parts.append(self.lip_map(lip_points).to(z_t.dtype))
        x = torch.cat(parts, dim=1)
        return self.unet(x, t, encoder_hidden_states=tokens, return_dict=False)[0]
