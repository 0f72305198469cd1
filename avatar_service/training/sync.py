"""Training stage of the lip-sync expert (model/sync.py says what it is and why landmarks): contrastive
(InfoNCE, as CLIP) on lip windows against their own audio, the batch's other audio and the same clip's
audio shifted by >= 5 frames; and `offset_distances`, the SyncNet-style offset scan (LSE-D / LSE-C) of
one clip from its stored lips and mel frames."""
from __future__ import annotations

import logging
import pathlib
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from torch import nn

from avatar_service.face.align import FaceLayout
from avatar_service import media
from avatar_service.training.config import TrainConfig
from avatar_service.model.sync import SyncConfig, SyncExpert, lip_windows, sync_mel
from avatar_service.training.dataset import Clip, FrameIndex, TalkingDataset
from avatar_service.training.loop import Stage
from avatar_service.training.runtime import Logger, Runtime, eval_mode

log = logging.getLogger(__name__)



@torch.no_grad()
def offset_distances(expert: SyncExpert, lips: np.ndarray, mel_frames: np.ndarray, max_offset: int = 15,
                     batch: int = 256) -> dict[str, Any]:
    """SyncNet-style evaluation of one clip from its lip offsets (T, 80) and mel frames (T_mel, n_mels):
    per-frame embeddings scored by evaluation.metrics.lse (the one LSE implementation)."""
    from avatar_service.evaluation.metrics import lse

    cfg = expert.config
    dev = next(expert.parameters()).device
    if len(lips) < cfg.frames:
        raise ValueError(f"clip has {len(lips)} frames; at least {cfg.frames} are needed")
    starts = np.minimum(np.arange(len(lips)), len(lips) - cfg.frames)
    v = torch.cat([expert.embed_video(lip_windows(lips, starts[k: k + batch], cfg.frames).to(dev))
                   for k in range(0, len(starts), batch)]).cpu().numpy()
    m = torch.from_numpy(sync_mel(mel_frames, np.arange(len(lips)), cfg.fps, cfg.mel, cfg.mel_frames)).to(dev)
    a = torch.cat([expert.embed_audio(m[k: k + batch]) for k in range(0, len(m), batch)]).cpu().numpy()
    r = lse(v, a, max_offset)
    return {"lse_d": r.distance, "lse_c": r.confidence, "offset": r.offset_frames, "distances": np.array(r.distances),
            "offsets": np.arange(-max_offset, max_offset + 1)}


class SyncObjective(nn.Module):
    """InfoNCE: row i's positive is column i (its own audio); the other in-batch audio and the
    same-clip shifted audio (columns B..2B) are negatives."""

    def __init__(self, expert: SyncExpert):
        super().__init__()
        self.expert = expert

    def forward(self, lips, mel, shifted_mel):
        v = self.expert.embed_video(lips)
        a = self.expert.embed_audio(torch.cat([mel, shifted_mel]))
        logits = self.expert.logit_scale.exp().clamp(max=100) * v @ a.T  # (B, 2B)
        target = torch.arange(len(v), device=v.device)
        loss = F.cross_entropy(logits, target)
        acc = (logits.argmax(dim=1) == target).float().mean()
        beats_shift = (logits.diagonal() > logits[target, target + len(v)]).float().mean()
        return loss, {"loss": loss.detach(), "accuracy": acc.detach(), "beats_shifted": beats_shift.detach()}


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
        ds = TalkingDataset(data, FaceLayout(), config.mel)
        if any(c.lips is None for c in ds.clips):
            raise ValueError(f"{data}: clips without lip landmarks; rebuild it with `avatarlab prepare`")
        if abs(ds.fps - config.fps) > 1e-6:
            raise ValueError(f"dataset is {ds.fps} fps but the sync config says {config.fps}")
        self.index = FrameIndex(ds.split("train"), span=config.frames)
        self.val = ds.split("val") or ds.split("train")

    def make_batch(self, rng: np.random.Generator, n: int, index: FrameIndex) -> dict[str, torch.Tensor]:
        """n lip windows, their audio, and the same clip's audio shifted by >= negative_min_shift frames."""
        cfg, rows = self.config, index.sample(rng, n)
        lips, mels, shifted = [], [], []
        for ci, s in rows:
            clip = index.clips[ci]
            cand = np.arange(0, len(clip) - cfg.frames + 1)
            cand = cand[np.abs(cand - s) >= self.tc.negative_min_shift]
            a = int(cand[rng.integers(0, len(cand))]) if len(cand) else s + self.tc.negative_min_shift  # short: silence
            lips.append(lip_windows(clip.lips, np.array([s]), cfg.frames))
            mels.append(sync_mel(clip.mel, np.array([s]), cfg.fps, cfg.mel, cfg.mel_frames))
            shifted.append(sync_mel(clip.mel, np.array([a]), cfg.fps, cfg.mel, cfg.mel_frames))
        x = torch.cat(lips)  # no mirroring: it would also have to swap left and right lip points
        dev = self.rt.device
        return {"lips": x.to(dev), "mel": torch.from_numpy(np.concatenate(mels)).to(dev),
                "shifted_mel": torch.from_numpy(np.concatenate(shifted)).to(dev)}

    def batch(self, rng):
        return self.make_batch(rng, self.tc.batch_size, self.index)

    def loss(self, model, batch):
        return model(**batch)

    def state_dict(self) -> dict:
        return {"sync_config": self.config.to_dict(), "expert": self.expert.state_dict()}

    def evaluate(self, clips: list[Clip]) -> list[dict[str, Any]]:
        with eval_mode(self.expert), self.rt.autocast():
            return [offset_distances(self.expert, c.lips, c.mel) for c in clips]

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
