"""A lip-sync expert (SyncNet as trained in Wav2Lip, Prajwal et al. 2020, sec. 3.2) (the model; its training stage is
training/sync.py).

Video: the lip landmarks of 5 consecutive frames (mediapipe's 40 lip points, offsets from the clip's
mean lip shape, so who is speaking does not show); audio: the log-mel frames covering the same 0.2 s.
Both encoders end in L2 normalisation and are trained contrastively (InfoNCE, as CLIP): each video
window against its own audio, the other windows' audio in the batch and the same clip's audio shifted
by >= 5 frames, so timing, not voice, is what separates them.

Why landmarks and not pixels: the pixel SyncNet (Wav2Lip's exact input) stayed at chance (BCE 0.693)
through 2000 CPU steps on our 8 minutes of video; Wav2Lip trains it for days on LRS2's 29 hours. Lip
landmarks carry the timing signal in 400 numbers, the expert learns it in minutes, and identity and
texture cannot be shortcuts. The generated video is measured by the same face mesh the pipeline uses.

Evaluation (LSE-D / LSE-C, Prajwal et al.): `SyncExpert.per_frame_embedders` plugs into
avatar_service.evaluation.metrics.sync_scores; `offset_distances` scans audio offsets of +-15 frames;
LSE-D is the smallest mean embedding distance, LSE-C the median minus that minimum. Embeddings here
are unit vectors, so distances lie in [0, 2] and are not on the scale of the published SyncNet's.
"""
from __future__ import annotations

import dataclasses
import math
import os
import pathlib
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from avatar_service.face.lips import centred_lips
from avatar_service.model.checkpoint import load_config, load_weights, save_module
from avatar_service.model.features import MelConfig, log_mel, silence_value


@dataclasses.dataclass(frozen=True)
class SyncConfig:
    name: str = "avatarlab-sync"
    mel: MelConfig = MelConfig()
    fps: float = 25.0
    frames: int = 5  # Wav2Lip's window: 0.2 s
    lip_points: int = 40  # mediapipe's lip contour points (face.lips.LIP_INDICES)
    video_hidden: tuple[int, ...] = (256, 256)
    audio_channels: tuple[int, ...] = (32, 64, 128, 256)
    embed_dim: int = 128
    dropout: float = 0.3  # 38 training clips: without it the expert memorises them (val LSE-C fell as train rose)

    @property
    def mel_frames(self) -> int:
        """Mel frames covering `frames` video frames (20 at 25 fps and 100 mel frames a second)."""
        return int(round(self.frames / self.fps * self.mel.frames_per_second))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SyncConfig":
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown SyncConfig keys {sorted(unknown)}: a pixel expert from an older version, "
                             "or a config from a newer one")
        kw = dict(d)
        if "mel" in kw:
            kw["mel"] = MelConfig(**kw["mel"])
        for k in ("video_hidden", "audio_channels"):
            if k in kw:
                kw[k] = tuple(kw[k])
        return cls(**kw)

    @classmethod
    def tiny(cls) -> "SyncConfig":
        return cls(name="avatarlab-sync-tiny", video_hidden=(64,), audio_channels=(8, 16, 32), embed_dim=32)


def _level(cin: int, cout: int) -> nn.Sequential:
    """Stride-2 conv then a residual conv, GroupNorm (no batch statistics: train and eval agree)."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.GroupNorm(min(8, cout // 4) or 1, cout), nn.ReLU(inplace=True),
        _Residual(nn.Sequential(nn.Conv2d(cout, cout, 3, padding=1), nn.GroupNorm(min(8, cout // 4) or 1, cout))),
        nn.ReLU(inplace=True),
    )


class _Residual(nn.Module):
    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body

    def forward(self, x):
        return x + self.body(x)


def _audio_encoder(channels: tuple[int, ...], dim: int) -> nn.Sequential:
    """Conv levels over (mel bands x time), then the map at a 2x2 grid flattened: where energy sits in
    frequency and time matters, and global pooling made every embedding point the same way."""
    layers, c = [], 1
    for co in channels:
        layers.append(_level(c, co))
        c = co
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d((2, 2)), nn.Flatten(), nn.Linear(c * 4, dim))


def _video_encoder(cfg: SyncConfig) -> nn.Sequential:
    """MLP over a window of lip offsets; the input norm learns the offsets' scale (a fraction of the crop)."""
    layers: list[nn.Module] = [nn.BatchNorm1d(cfg.frames * cfg.lip_points * 2, affine=False)]
    c = cfg.frames * cfg.lip_points * 2
    for h in cfg.video_hidden:
        layers += [nn.Linear(c, h), nn.LayerNorm(h), nn.ReLU(inplace=True), nn.Dropout(cfg.dropout)]
        c = h
    return nn.Sequential(*layers, nn.Linear(c, cfg.embed_dim))


class SyncExpert(nn.Module):
    def __init__(self, config: SyncConfig):
        super().__init__()
        self.config = config
        self.video = _video_encoder(config)
        self.audio = _audio_encoder(config.audio_channels, config.embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(10.0)))  # InfoNCE temperature, learnt (CLIP)

    def embed_video(self, lips: torch.Tensor) -> torch.Tensor:
        """lips (B, F, lip_points * 2) centred lip offsets -> (B, D) unit vectors."""
        b, f, _ = lips.shape
        if f != self.config.frames:
            raise ValueError(f"embed_video: windows of {self.config.frames} frames expected, got {f}")
        return F.normalize(self.video(lips.reshape(b, -1)).float(), dim=1)

    def embed_audio(self, mel: torch.Tensor) -> torch.Tensor:
        """mel (B, n_mels, mel_frames) -> (B, D) unit vectors."""
        return F.normalize(self.audio(mel.unsqueeze(1)).float(), dim=1)

    def forward(self, lips: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        """-> (B,) cosine similarity of each video window with its audio window (1 = in sync)."""
        return (self.embed_video(lips) * self.embed_audio(mel)).sum(dim=1)

    def per_frame_embedders(self, batch: int = 256):
        """(embed_video, embed_audio) for avatar_service.evaluation.metrics.sync_scores, numpy in and out:
        embed_video(crops (T, S, S, 3) uint8 aligned face crops, any S) -> (T, D), the window from each frame
        on (the last frames repeat the final one); embed_audio(audio16k (N,)) -> (T, D), T = N * fps / 16000."""
        cfg = self.config
        dev = next(self.parameters()).device

        @torch.no_grad()
        def embed_video(crops: np.ndarray) -> np.ndarray:
            lips = measure_lips(np.asarray(crops))
            idx = np.minimum(np.arange(len(lips))[:, None] + np.arange(cfg.frames)[None, :], len(lips) - 1)
            return np.concatenate([self.embed_video(torch.from_numpy(lips[idx[k: k + batch]]).to(dev)).cpu().numpy()
                                   for k in range(0, len(idx), batch)])

        @torch.no_grad()
        def embed_audio(audio16k: np.ndarray) -> np.ndarray:
            n = int(len(audio16k) * cfg.fps / cfg.mel.sample_rate_hz)
            mel = sync_mel(log_mel(np.asarray(audio16k, np.float32), cfg.mel), np.arange(n), cfg.fps, cfg.mel, cfg.mel_frames)
            return np.concatenate([self.embed_audio(torch.from_numpy(mel[k: k + batch]).to(dev)).cpu().numpy()
                                   for k in range(0, n, batch)])

        return embed_video, embed_audio

    def save_pretrained(self, path: str | os.PathLike, dtype: torch.dtype | None = None) -> pathlib.Path:
        return save_module(self, path, "sync", self.config.to_dict(), self.config.name, dtype)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, device: str = "cpu") -> "SyncExpert":
        return load_weights(cls(SyncConfig.from_dict(load_config(path, "sync", "sync expert"))), path, device)


def measure_lips(crops: np.ndarray) -> np.ndarray:
    """(T, S, S, 3) aligned crops -> (T, 80) float32 lip offsets from the clip's mean shape (as the data
    pipeline stores them); frames where the face mesh fails read as the mean shape (zeros)."""
    from avatar_service.face.lips import LipTracker

    tracker = LipTracker()
    try:
        lips = np.stack([tracker.measure(c)[0] for c in crops])
    finally:
        tracker.close()
    out = centred_lips(lips, np.ones(len(lips), bool), crops.shape[1])
    return np.nan_to_num(out, nan=0.0)


def lip_windows(lips: np.ndarray, starts: np.ndarray, frames: int) -> torch.Tensor:
    """(T, 80) lip offsets -> (N, frames, 80), one window per start; unmeasured frames read as zeros."""
    idx = np.asarray(starts)[:, None] + np.arange(frames)[None, :]
    return torch.from_numpy(np.nan_to_num(lips[idx], nan=0.0).astype(np.float32))


def sync_mel(mel_frames: np.ndarray, start_frames: np.ndarray, fps: float, mel: MelConfig, n_mel: int) -> np.ndarray:
    """(N, n_mels, n_mel) mel frames from the start of video frame s on, for each start s (a video
    window [s, s + w) is covered by n_mel = w / fps * 100 mel frames); out of range reads as silence."""
    first = np.round(np.asarray(start_frames) / fps * mel.frames_per_second).astype(np.int64)
    idx = first[:, None] + np.arange(n_mel)[None, :]
    ok = (idx >= 0) & (idx < len(mel_frames))
    out = np.where(ok[..., None], mel_frames[np.clip(idx, 0, max(0, len(mel_frames) - 1))], silence_value(mel))
    return np.ascontiguousarray(out.transpose(0, 2, 1), dtype=np.float32)
