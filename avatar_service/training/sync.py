"""A lip-sync expert (SyncNet as trained in Wav2Lip, Prajwal et al. 2020, sec. 3.2) and its stage.

Video: 5 consecutive mouth regions stacked on channels; audio: the mel frames covering the same
0.2 s. Both encoders end in L2 normalisation; P(in sync) = sigmoid(s * cos + b) with learnt s and b,
trained with BCE against off-sync negatives (audio shifted >= 5 frames). Wav2Lip instead reads a
ReLU-embedding cosine in [0, 1] directly as the probability; that version sat at chance (loss 0.693)
in our short runs because all embeddings share one dominant direction, a plateau Wav2Lip reports too.

Evaluation (LSE-D / LSE-C, Prajwal et al.): `SyncExpert.per_frame_embedders` plugs into
avatar_service.evaluation.metrics.sync_scores; `offset_distances` scans audio offsets of +-15 frames;
LSE-D is the smallest mean embedding distance, LSE-C the median minus that minimum. Embeddings here
are unit vectors, so distances lie in [0, 2] and are not on the scale of the published SyncNet's.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import pathlib
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from avatar_service.model.checkpoint import load_config, load_weights, save_module
from torch import nn

from avatar_service.face.align import FaceLayout
from avatar_service.model.features import MelConfig, log_mel
from avatar_service.training import media
from avatar_service.training.config import TrainConfig
from avatar_service.training.dataset import Clip, FrameIndex, TalkingDataset, region_of, sync_mel, to_tensor
from avatar_service.training.loop import Stage
from avatar_service.training.runtime import Logger, Runtime, eval_mode

log = logging.getLogger(__name__)



@dataclasses.dataclass(frozen=True)
class SyncConfig:
    name: str = "avatarlab-sync"
    layout: FaceLayout = FaceLayout()  # the region the expert looks at: same crop as the generator
    mel: MelConfig = MelConfig()
    fps: float = 25.0
    frames: int = 5  # Wav2Lip's window: 0.2 s
    video_channels: tuple[int, ...] = (32, 64, 128, 256, 256)  # one stride-2 level each
    audio_channels: tuple[int, ...] = (32, 64, 128, 256)
    embed_dim: int = 256

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
            raise ValueError(f"unknown SyncConfig keys {sorted(unknown)}: config from a newer version?")
        kw = dict(d)
        if "layout" in kw:
            kw["layout"] = FaceLayout(**{k: tuple(v) if isinstance(v, list) else v for k, v in kw["layout"].items()})
        if "mel" in kw:
            kw["mel"] = MelConfig(**kw["mel"])
        for k in ("video_channels", "audio_channels"):
            if k in kw:
                kw[k] = tuple(kw[k])
        return cls(**kw)

    @classmethod
    def tiny(cls) -> "SyncConfig":
        return cls(name="avatarlab-sync-tiny", layout=FaceLayout(crop_px=64), video_channels=(8, 16, 32),
                   audio_channels=(8, 16, 32), embed_dim=32)


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


def _encoder(cin: int, channels: tuple[int, ...], dim: int, grid: tuple[int, int]) -> nn.Sequential:
    """Conv levels, then the feature map at a fixed small grid flattened: where a feature is (lip
    corner, teeth) matters, and global average pooling had every embedding point the same way."""
    layers, c = [], cin
    for co in channels:
        layers.append(_level(c, co))
        c = co
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(grid), nn.Flatten(), nn.Linear(c * grid[0] * grid[1], dim),
                         nn.BatchNorm1d(dim))


class SyncExpert(nn.Module):
    def __init__(self, config: SyncConfig):
        super().__init__()
        self.config = config
        self.video = _encoder(3 * config.frames, config.video_channels, config.embed_dim, (2, 4))  # region is 1:2
        self.audio = _encoder(1, config.audio_channels, config.embed_dim, (2, 2))  # mel bands x time
        # P(in sync) = sigmoid(scale * cos + bias), scale and bias learnt (as CLIP's temperature)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(10.0)))
        self.logit_bias = nn.Parameter(torch.tensor(0.0))

    def embed_video(self, frames: torch.Tensor) -> torch.Tensor:
        """frames (B, F, 3, H, W) mouth regions in [-1, 1] -> (B, D) unit vectors."""
        b, f, c, h, w = frames.shape
        if f != self.config.frames:
            raise ValueError(f"embed_video: windows of {self.config.frames} frames expected, got {f}")
        return F.normalize(self.video(frames.reshape(b, f * c, h, w)).float(), dim=1)

    def embed_audio(self, mel: torch.Tensor) -> torch.Tensor:
        """mel (B, n_mels, mel_frames) -> (B, D) unit vectors."""
        return F.normalize(self.audio(mel.unsqueeze(1)).float(), dim=1)

    def logits(self, frames: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        """-> (B,) log-odds of being in sync."""
        cos = (self.embed_video(frames) * self.embed_audio(mel)).sum(dim=1)
        return self.logit_scale.exp() * cos + self.logit_bias

    def forward(self, frames: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        """frames (B, F, 3, H, W), mel (B, n_mels, mel_frames) -> (B,) P(in sync)."""
        return torch.sigmoid(self.logits(frames, mel))

    def per_frame_embedders(self, batch: int = 256):
        """(embed_video, embed_audio) for avatar_service.evaluation.metrics.sync_scores, numpy in and out:
        embed_video(crops (T, S, S, 3) uint8 aligned face crops, any S) -> (T, D), the window from each frame
        on (the last frames repeat the final one); embed_audio(audio16k (N,)) -> (T, D), T = N * fps / 16000."""
        cfg = self.config
        dev = next(self.parameters()).device

        @torch.no_grad()
        def embed_video(crops: np.ndarray) -> np.ndarray:
            regions = region_of(np.asarray(crops), cfg.layout)
            idx = np.minimum(np.arange(len(regions))[:, None] + np.arange(cfg.frames)[None, :], len(regions) - 1)
            out = []
            for k in range(0, len(idx), batch):
                x = to_tensor(regions[idx[k: k + batch].reshape(-1)])
                out.append(self.embed_video(x.reshape(-1, cfg.frames, *x.shape[1:]).to(dev)).cpu().numpy())
            return np.concatenate(out)

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


def video_windows(regions: np.ndarray, starts: np.ndarray, frames: int) -> torch.Tensor:
    """(T, H, W, 3) uint8 regions -> (N, frames, 3, H, W) in [-1, 1], one window per start."""
    idx = np.asarray(starts)[:, None] + np.arange(frames)[None, :]
    x = to_tensor(regions[idx.reshape(-1)])  # (N*F, 3, H, W)
    return x.reshape(len(idx), frames, *x.shape[1:])


@torch.no_grad()
def offset_distances(expert: SyncExpert, regions: np.ndarray, mel_frames: np.ndarray, max_offset: int = 15,
                     batch: int = 256) -> dict[str, Any]:
    """SyncNet-style evaluation of one clip. regions (T, H, W, 3) uint8 at the expert's layout,
    mel_frames (T_mel, n_mels). Returns mean distance per audio offset (frames, -max..max),
    LSE-D (min), LSE-C (median - min) and the best offset (0 = in sync)."""
    cfg = expert.config
    dev = next(expert.parameters()).device
    starts = np.arange(0, len(regions) - cfg.frames + 1)
    if len(starts) == 0:
        raise ValueError(f"clip has {len(regions)} frames; at least {cfg.frames} are needed")
    v = torch.cat([expert.embed_video(video_windows(regions, starts[k: k + batch], cfg.frames).to(dev))
                   for k in range(0, len(starts), batch)])
    offsets = np.arange(-max_offset, max_offset + 1)
    dist = []
    for o in offsets:
        m = torch.from_numpy(sync_mel(mel_frames, starts + o, cfg.fps, cfg.mel, cfg.mel_frames)).to(dev)
        a = torch.cat([expert.embed_audio(m[k: k + batch]) for k in range(0, len(m), batch)])
        dist.append((v - a).norm(dim=1).mean().item())
    dist = np.array(dist)
    k = int(dist.argmin())
    return {"offsets": offsets, "distances": dist, "lse_d": float(dist[k]),
            "lse_c": float(np.median(dist) - dist[k]), "offset": int(offsets[k])}


class SyncObjective(nn.Module):
    def __init__(self, expert: SyncExpert):
        super().__init__()
        self.expert = expert

    def forward(self, frames, mel, label):
        logits = self.expert.logits(frames, mel)
        loss = F.binary_cross_entropy_with_logits(logits, label)
        acc = ((logits > 0).float() == label).float().mean()
        return loss, {"loss": loss.detach(), "accuracy": acc.detach()}


class SyncStage(Stage):
    name = "sync"

    def __init__(self, rt: Runtime, tc: TrainConfig, run_dir: pathlib.Path, data: str, config: SyncConfig,
                 init: str | None = None, state: dict | None = None):
        self.rt, self.tc, self.run_dir = rt, tc, run_dir
        if state is not None:
            config = SyncConfig.from_dict(state["sync_config"])
            self.expert = SyncExpert(config)
            self.expert.load_state_dict(state["expert"])
        elif init:
            self.expert = SyncExpert.from_pretrained(init)
            config = self.expert.config
        else:
            self.expert = SyncExpert(config)
        self.config = config
        self.expert.to(rt.device)
        self.trainable = SyncObjective(self.expert)
        ds = TalkingDataset(data, config.layout, config.mel)
        if abs(ds.fps - config.fps) > 1e-6:
            raise ValueError(f"dataset is {ds.fps} fps but the sync config says {config.fps}")
        self.index = FrameIndex(ds.split("train"), span=config.frames)
        self.val = ds.split("val") or ds.split("train")

    def make_batch(self, rng: np.random.Generator, n: int, index: FrameIndex) -> dict[str, torch.Tensor]:
        """Half in sync, half with audio shifted by at least negative_min_shift frames (same clip,
        so the voice matches and only timing tells them apart)."""
        cfg, rows = self.config, index.sample(rng, n)
        label = (rng.random(n) < 0.5).astype(np.float32)
        frames, starts = [], []
        for (ci, s), y in zip(rows, label):
            clip = index.clips[ci]
            a = s
            if y == 0:
                cand = np.arange(0, len(clip) - cfg.frames + 1)
                cand = cand[np.abs(cand - s) >= self.tc.negative_min_shift]
                if len(cand) == 0:  # too short to shift: the shifted window reads past the clip (silence)
                    cand = np.array([s + self.tc.negative_min_shift])
                a = int(cand[rng.integers(0, len(cand))])
            frames.append(clip.regions[s: s + cfg.frames])
            starts.append(a)
        u8 = np.stack(frames)  # (n, F, H, W, 3)
        flip = rng.random(n) < 0.5
        u8[flip] = u8[flip, :, :, ::-1]
        x = to_tensor(u8.reshape(-1, *u8.shape[2:])).reshape(n, cfg.frames, 3, *u8.shape[2:4])
        mels = [sync_mel(index.clips[ci].mel, np.array([a]), cfg.fps, cfg.mel, cfg.mel_frames)
                for (ci, _), a in zip(rows, starts)]
        dev = self.rt.device
        return {"frames": x.to(dev), "mel": torch.from_numpy(np.concatenate(mels)).to(dev),
                "label": torch.from_numpy(label).to(dev)}

    def batch(self, rng):
        return self.make_batch(rng, self.tc.batch_size, self.index)

    def loss(self, model, batch):
        return model(**batch)

    def state_dict(self) -> dict:
        return {"sync_config": self.config.to_dict(), "expert": self.expert.state_dict()}

    def evaluate(self, clips: list[Clip]) -> list[dict[str, Any]]:
        with eval_mode(self.expert), self.rt.autocast():
            return [offset_distances(self.expert, c.regions, c.mel) for c in clips]

    def write_samples(self, step: int, logger: Logger) -> None:
        """Distance-vs-offset curves of a few val clips (a dip at 0 means the expert has learnt sync)."""
        res = self.evaluate(self.val[:4])
        logger.scalars(step, {"sync/val_lse_d": float(np.mean([r["lse_d"] for r in res])),
                              "sync/val_lse_c": float(np.mean([r["lse_c"] for r in res])),
                              "sync/val_abs_offset": float(np.mean([abs(r["offset"]) for r in res]))})
        img = Image.new("RGB", (320, 160), "white")
        d = ImageDraw.Draw(img)
        d.line([(160, 0), (160, 160)], fill=(200, 200, 200))
        for r, colour in zip(res, [(200, 0, 0), (0, 120, 0), (0, 0, 200), (150, 0, 150)]):
            x = (r["offsets"] - r["offsets"][0]) / (len(r["offsets"]) - 1) * 310 + 5
            lo, hi = r["distances"].min(), r["distances"].max()
            y = 150 - (r["distances"] - lo) / max(hi - lo, 1e-6) * 140
            d.line(list(zip(x.tolist(), y.tolist())), fill=colour, width=2)
        media.save_png(self.run_dir / "samples" / f"sync_{step:08d}.png", np.asarray(img))
        logger.image(step, "sync/distance_vs_offset", np.asarray(img))

    def finish(self, logger: Logger) -> pathlib.Path:
        out = self.expert.save_pretrained(self.run_dir / "model")
        log.info("saved %s", out)
        return out
