"""The inner mouth by latent diffusion (`mouth_fill: diffusion`), beside the plain fill (face/warp.py
MouthInterior, the default; docs/renderer.md compares them).

Per portrait pose a `DiffusionInterior` holds the reference's mouth latent and a fixed start noise. Per
frame, only where the target mouth opens wider than the portrait's own (the plain fill's strength > 0),
the plain interior is drawn first, the mouth crop around the target lips is cut from the warped frame,
the fill model redraws it (model/mouth_fill.py), the result is colour-matched to the warped lips around
it and pasted inside the target inner lips plus a feathered margin (face/mouth_crop.py). Nothing else
of the frame changes.
"""
from __future__ import annotations

import functools
import pathlib

import numpy as np
import torch

from avatar_service.face.lips import LIP_INDICES
from avatar_service.face.mesh import INNER_LIP
from avatar_service.face.mouth_crop import MouthCrop, inner_mask, paste
from avatar_service.face.warp import MouthInterior
from avatar_service.model.mouth_fill import MouthFillModel

EMBEDDED_FILL = pathlib.Path(__file__).resolve().parents[1] / "assets" / "mouth_fill"


@functools.lru_cache(maxsize=4)
def load_fill_model(path: str = "default") -> MouthFillModel:
    """The embedded fill model ('default') or a folder saved by `avatarlab train mouth-fill`, shared per process."""
    folder = EMBEDDED_FILL if path == "default" else pathlib.Path(path)
    if not (folder / "config.json").exists():
        raise FileNotFoundError(f"{folder} has no mouth fill model (config.json): run `avatarlab train mouth-fill`")
    return MouthFillModel.from_pretrained(folder)


def _tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float() / 127.5 - 1


class DiffusionInterior:
    """Same interface as MouthInterior (`strength`, `fill`)."""

    def __init__(self, model: MouthFillModel, image: np.ndarray, mesh: np.ndarray, plain: MouthInterior, seed: int = 0):
        self.model, self.plain = model, plain
        self.cfg = model.config.crop
        c, h, w = model.config.networks.latent_shape
        self.noise = torch.randn((1, c, h, w), generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            self.z_ref = model.encode(_tensor(MouthCrop.of(mesh, self.cfg).cut(image)))
        self._ring_px = max(2.0, 0.08 * self.cfg.px)

    def strength(self, target: np.ndarray) -> float:
        return self.plain.strength(target)

    def generate(self, warped_crop: np.ndarray, crop: MouthCrop, target: np.ndarray) -> np.ndarray:
        """The model's (px, px, 3) uint8 crop for a warped crop and the target mesh."""
        lips = torch.from_numpy((crop.points(np.asarray(target)[list(LIP_INDICES)]) / self.cfg.px).astype(np.float32))[None]
        with torch.no_grad():
            z_warp = self.model.encode(_tensor(warped_crop))
            z0 = self.model.sample(z_warp, self.z_ref, lips, self.noise)
            out = self.model.decode(z0)[0]
        return ((out.clamp(-1, 1) + 1) * 127.5).permute(1, 2, 0).numpy()

    def fill(self, frame: np.ndarray, target: np.ndarray) -> None:
        strength = self.strength(target)
        self.plain.fill(frame, target)
        if strength <= 0:
            return
        crop = MouthCrop.of(target, self.cfg)
        warped = crop.cut(frame)
        gen = self.generate(warped, crop, target)
        # colour match: the autoencoder shifts colour a little; the lips just around the opening say by how much
        inner = crop.points(np.asarray(target)[list(INNER_LIP)])
        hard = inner_mask(inner, warped.shape[:2])
        ring = (inner_mask(inner, warped.shape[:2], dilate_px=self._ring_px) > 0.5) & (hard < 0.5)
        if ring.any():
            shift = np.clip((warped[ring].astype(np.float32) - gen[ring]).mean(0), -25, 25)
            gen = gen + shift
        paste(frame, np.clip(gen + 0.5, 0, 255).astype(np.uint8), crop, target, strength, self.cfg)
