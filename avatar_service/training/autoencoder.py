"""Stage 1: the KL image autoencoder on mouth regions (LDM's KL-f8 recipe without the GAN and
LPIPS terms, which need pretrained weights: L1 + image-gradient L1 + a small KL).

After training, the latent mean and std per channel are measured on training regions and stored in
FaceGenerator.latent_mean/latent_std, so the denoiser sees unit-variance latents.
"""
from __future__ import annotations

import logging
import pathlib

import numpy as np
import torch
from torch import nn

from avatar_service.model import FaceGenerator, GeneratorConfig
from avatar_service import media
from avatar_service.training.config import TrainConfig
from avatar_service.training.dataset import FrameIndex, TalkingDataset, load_face_photos, to_tensor, to_uint8
from avatar_service.training.loop import Stage
from avatar_service.training.runtime import Logger, Runtime, eval_mode

log = logging.getLogger(__name__)


def image_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Finite differences along W and H of (B, C, H, W)."""
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


class AutoencoderObjective(nn.Module):
    """x (B, 3, H, W) in [-1, 1] -> (loss, logs): reconstruct through a sampled latent."""

    def __init__(self, autoencoder: nn.Module, tc: TrainConfig, mask: torch.Tensor | None = None):
        """`mask` (H, W), 1 where the generator redraws: only that part is ever shown, so its pixels
        weigh `tc.ae_mask_weight` times the rest (the rest still matters: it carries pose context)."""
        super().__init__()
        self.autoencoder = autoencoder
        self.kl_weight, self.edge_weight = tc.kl_weight, tc.edge_weight
        w = torch.ones(1, 1, 1, 1) if mask is None else 1.0 + (tc.ae_mask_weight - 1.0) * mask[None, None].float()
        self.register_buffer("pixel_weight", w / w.mean(), persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        posterior = self.autoencoder.encode(x).latent_dist
        rec = self.autoencoder.decode(posterior.sample()).sample.float()  # (B, 3, H, W)
        w = self.pixel_weight
        l1 = ((rec - x).abs() * w).mean()
        kl = posterior.kl().float().mean() / x[0].numel()  # summed over the latent, per pixel
        (gx, gy), (rx, ry) = image_gradients(x), image_gradients(rec)
        wx = w[..., :, 1:] if w.shape[-1] > 1 else w  # a (1, 1, 1, 1) weight broadcasts as it is
        wy = w[..., 1:, :] if w.shape[-2] > 1 else w
        edge = ((gx - rx).abs() * wx).mean() + ((gy - ry).abs() * wy).mean()
        loss = l1 + self.kl_weight * kl + self.edge_weight * edge
        return loss, {"loss": loss.detach(), "l1": l1.detach(), "kl": kl.detach(), "edge": edge.detach()}


class AutoencoderStage(Stage):
    name = "autoencoder"

    def __init__(self, rt: Runtime, tc: TrainConfig, run_dir: pathlib.Path, data: str | None,
                 config: GeneratorConfig, init: str | None = None, faces: str | None = None,
                 state: dict | None = None):
        self.rt, self.tc, self.run_dir = rt, tc, run_dir
        if state is not None:
            config = GeneratorConfig.from_dict(state["generator_config"])
        self.generator = FaceGenerator(config)
        if state is not None:  # this stage owns only the autoencoder: the rest is trained by the denoiser stage
            own = {k: v for k, v in state["generator"].items() if k.startswith(("autoencoder.", "latent_"))}
            missing = [k for k in self.generator.state_dict() if k.startswith("autoencoder.") and k not in own]
            if missing:
                raise ValueError(f"checkpoint has no autoencoder weights for {missing[:3]}...")
            self.generator.load_state_dict(own, strict=False)
        elif init:
            self.generator = FaceGenerator.from_pretrained(init)
            config = self.generator.config
        self.config = config
        self.generator.to(rt.device)
        mask = torch.from_numpy(config.layout.region_mask(soft=True)).to(rt.device)
        self.trainable = AutoencoderObjective(self.generator.autoencoder, tc, mask)
        self.frames = self.val = None
        if data:
            ds = TalkingDataset(data, config.layout, config.mel)
            self.frames = FrameIndex(ds.split("train"))
            val = ds.split("val") or ds.split("train")
            self.val = FrameIndex(val)
        self.faces = load_face_photos(faces, config.layout, run_dir / "cache") if faces else None
        if self.frames is None and self.faces is None:
            raise ValueError("autoencoder: give --data, --faces or both")
        log.info("autoencoder data: %d frames, %d face photos", len(self.frames) if self.frames else 0,
                 0 if self.faces is None else len(self.faces))
        vr = np.random.default_rng(1234)  # fixed frames, so grids are comparable across steps
        src = self.val or None
        self.sample_regions = (self._regions(src.sample(vr, 8), src.clips) if src
                               else self.faces[vr.integers(0, len(self.faces), 8)])

    @staticmethod
    def _regions(rows: np.ndarray, clips) -> np.ndarray:
        return np.stack([clips[c].regions[i] for c, i in rows])

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """(n, H, W, 3) uint8: clip frames and face photos mixed, randomly mirrored."""
        n_faces = 0 if self.faces is None else (n if self.frames is None else int(rng.binomial(n, self.tc.faces_fraction)))
        parts = []
        if n - n_faces:
            parts.append(self._regions(self.frames.sample(rng, n - n_faces), self.frames.clips))
        if n_faces:
            parts.append(self.faces[rng.integers(0, len(self.faces), n_faces)])
        x = np.concatenate(parts)
        flip = rng.random(n) < 0.5
        x[flip] = x[flip, :, ::-1]
        return x

    def batch(self, rng):
        return {"x": to_tensor(self.draw(rng, self.tc.batch_size)).to(self.rt.device, non_blocking=True)}

    def loss(self, model, batch):
        return model(batch["x"])

    def state_dict(self) -> dict:
        return {"generator_config": self.config.to_dict(), "generator": self.generator.state_dict()}

    @torch.no_grad()
    def reconstruct(self, regions: np.ndarray) -> np.ndarray:
        x = to_tensor(regions).to(self.rt.device)
        with eval_mode(self.generator), self.rt.autocast():
            ae = self.generator.autoencoder
            return to_uint8(ae.decode(ae.encode(x).latent_dist.mean).sample)

    def write_samples(self, step: int, logger: Logger) -> None:
        rec = self.reconstruct(self.sample_regions)
        img = media.grid([list(self.sample_regions), list(rec)])
        media.save_png(self.run_dir / "samples" / f"autoencoder_{step:08d}.png", img, scale=2)
        logger.image(step, "autoencoder/real_vs_reconstruction", img)

    @torch.no_grad()
    def measure_latent_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and std of posterior means over `stats_batches` training batches."""
        rng = np.random.default_rng(99)
        s = s2 = None
        count = 0
        ae = self.generator.autoencoder
        with eval_mode(self.generator), self.rt.autocast():
            for _ in range(self.tc.stats_batches):
                z = ae.encode(to_tensor(self.draw(rng, self.tc.batch_size)).to(self.rt.device)).latent_dist.mean.double()
                s = z.sum(dim=(0, 2, 3)) if s is None else s + z.sum(dim=(0, 2, 3))
                s2 = (z ** 2).sum(dim=(0, 2, 3)) if s2 is None else s2 + (z ** 2).sum(dim=(0, 2, 3))
                count += z.shape[0] * z.shape[2] * z.shape[3]
        mean = s / count
        std = (s2 / count - mean ** 2).clamp_min(1e-12).sqrt()
        return mean.float(), std.float()

    def finish(self, logger: Logger) -> pathlib.Path:
        mean, std = self.measure_latent_stats()
        self.generator.latent_mean.copy_(mean)
        self.generator.latent_std.copy_(std)
        log.info("latent mean %s std %s", np.round(mean.cpu().numpy(), 3), np.round(std.cpu().numpy(), 3))
        out = self.generator.save_pretrained(self.run_dir / "model")
        log.info("saved %s (autoencoder trained, latent statistics set; denoiser untrained)", out)
        return out
