"""`avatarlab train mouth-fill`: the inner-mouth latent denoiser (model/mouth_fill.py).

Training pairs come from the train split only (never the held-out identities): each clip's first frame
is the portrait, warped by the warp renderer to every frame's *measured* geometry (the oracle path of
`avatarlab eval`, plain interior drawn) and placed like the real head; the pair is (warped crop, real
crop) around the target mouth, kept where the mouth opens wider than the portrait's own (the only
frames the fill ever runs on). The generator's trained autoencoder is copied in and frozen; latents are
encoded once and cached. The loss is v-prediction on the residual (real - warped latent), weighted on
the real inner lips.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import pathlib

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from avatar_service.face.lips import LIP_INDICES
from avatar_service.face.mesh import INNER_LIP
from avatar_service.face.mouth_crop import MouthCrop, inner_mask
from avatar_service.model.mouth_fill import MouthFillConfig, MouthFillModel
from avatar_service.training.config import TrainConfig
from avatar_service.training.loop import Stage
from avatar_service.training.runtime import Logger, Runtime

log = logging.getLogger(__name__)
CACHE = pathlib.Path.home() / ".cache" / "avatarlab" / "mouth_fill"
PAIRS_VERSION = 1


@dataclasses.dataclass
class Pairs:
    warped: np.ndarray  # (N, px, px, 3) uint8: the warp renderer's crop (plain interior)
    real: np.ndarray  # (N, px, px, 3) uint8: the real frame's crop
    lips: np.ndarray  # (N, 40, 2) target lip contours, crop-relative
    inner: np.ndarray  # (N, px, px) float32: the real inner lips (loss weight)
    clip: np.ndarray  # (N,) index into `refs`
    refs: np.ndarray  # (n_clips, px, px, 3) uint8: each portrait's own mouth crop

    def save(self, path: pathlib.Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **dataclasses.asdict(self))
        tmp.replace(path)

    @classmethod
    def load(cls, path: pathlib.Path) -> "Pairs":
        with np.load(path) as z:
            return cls(**{f.name: z[f.name] for f in dataclasses.fields(cls)})


def oracle_pairs(crops: np.ndarray, real_mesh3d: np.ndarray, basis, ref_mesh: np.ndarray, cfg: MouthFillConfig):
    """One clip's frames where the warp renderer shows interior: yields (warped crop, real crop, lip
    points, real inner-lip mask); and the portrait's own mouth crop."""
    from avatar_service.evaluation.evaluate import placements
    from avatar_service.runtime.warp_renderer import WarpFace

    import cv2

    face = WarpFace(crops[0], ref_mesh, basis)
    ok = np.isfinite(real_mesh3d).all(axis=(1, 2))
    coeffs = basis.coefficients(real_mesh3d[ok])
    moves = placements(ref_mesh, real_mesh3d)
    px, s = cfg.crop.px, crops.shape[1]
    out = []
    for k, t in enumerate(np.flatnonzero(ok)):
        target = face.target(coeffs[k] - coeffs[0])
        if face.interior.strength(target) <= 0:
            continue
        frame = face.render_delta(coeffs[k] - coeffs[0]).frame
        a = moves[t]
        placed = cv2.warpAffine(frame, a, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        placed_target = target[:, :2] @ a[:, :2].T + a[:, 2]
        crop = MouthCrop.of(placed_target, cfg.crop)
        lips = crop.points(placed_target[list(LIP_INDICES)]) / px
        inner = inner_mask(crop.points(real_mesh3d[t][list(INNER_LIP)]), (px, px), dilate_px=1.0)
        out.append((crop.cut(placed), crop.cut(crops[t]), lips.astype(np.float32), inner))
    return out, MouthCrop.of(ref_mesh, cfg.crop).cut(crops[0])


def build_pairs(dataset: str | pathlib.Path, cfg: MouthFillConfig, split: str = "train", log_fn=log.info) -> Pairs:
    """Every clip of `split` (cached per dataset, split and crop settings)."""
    from tqdm import tqdm

    from avatar_service.data import meshes
    from avatar_service.runtime.warp_renderer import MotionModel, measure_mesh

    root = pathlib.Path(dataset)
    manifest = json.loads((root / "manifest.json").read_text())
    clips = [c for c in manifest["clips"] if c["split"] == split]
    if not clips:
        raise ValueError(f"{root}: no clips in split {split!r}")
    key = hashlib.sha1(json.dumps([PAIRS_VERSION, str(root.resolve()), split, [c["id"] for c in clips],
                                   dataclasses.asdict(cfg.crop)]).encode()).hexdigest()[:12]
    path = CACHE / f"pairs-{key}.npz"
    if path.exists():
        log_fn(f"mouth-fill pairs: cached {path}")
        return Pairs.load(path)
    basis = MotionModel.default().basis
    rows, refs, owner = [], [], []
    for c in tqdm(clips, desc="mouth-fill pairs", unit="clip"):
        if not meshes.mesh_path(root, c["id"]).exists():
            raise FileNotFoundError(f"{root}: no cached face meshes for {c['id']}: run `avatarlab train motion` first")
        with np.load(root / c["path"]) as z:
            crops = z["crops"]
        mesh3d = meshes.load(root, c["id"])[: len(crops)]
        try:
            ref_mesh = measure_mesh(crops[0])
        except Exception as e:  # a clip whose first frame has no mesh is no portrait: skip it, say so
            log_fn(f"skip {c['id']}: {e}")
            continue
        got, ref = oracle_pairs(crops, mesh3d, basis, ref_mesh, cfg)
        rows += got
        owner += [len(refs)] * len(got)
        refs.append(ref)
    w, r, lips, inner = (np.stack(x) for x in zip(*rows))
    pairs = Pairs(w, r, lips, inner.astype(np.float32), np.asarray(owner, np.int32), np.stack(refs))
    pairs.save(path)
    log_fn(f"mouth-fill pairs: {len(w)} frames of {len(refs)} clips -> {path}")
    return pairs


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) in [-1, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1


def to_images(x: torch.Tensor) -> np.ndarray:
    return ((x.clamp(-1, 1) + 1) * 127.5 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


@torch.no_grad()
def encode_all(model: MouthFillModel, images: np.ndarray, batch: int = 128) -> torch.Tensor:
    return torch.cat([model.encode(to_tensor(images[i:i + batch])) for i in range(0, len(images), batch)])


class MouthFillObjective(nn.Module):
    """The trainable part (denoiser, geometry tokens) and its inner-mouth-weighted v-prediction loss."""

    def __init__(self, model: MouthFillModel, max_t: int):
        super().__init__()
        self.denoiser, self.geometry = model.denoiser, model.geometry
        self.to_target = model.config.networks.denoiser.to_target
        self.max_t = max_t
        abar = model.make_scheduler().alphas_cumprod.float()
        self.register_buffer("sqrt_abar", abar.sqrt(), persistent=False)
        self.register_buffer("sqrt_one_minus_abar", (1 - abar).sqrt(), persistent=False)

    def forward(self, z_real, z_warp, z_ref, lips, weight):
        t = torch.randint(0, self.max_t, (len(z_real),))
        noise = torch.randn_like(z_real)
        a = self.sqrt_abar[t][:, None, None, None]
        s = self.sqrt_one_minus_abar[t][:, None, None, None]
        x0 = self.to_target(z_real, z_warp)
        pred = self.denoiser(a * x0 + s * noise, t, z_warp, z_ref, self.geometry(lips), lips)
        err = (pred - (a * noise - s * x0)) ** 2
        loss = (weight * err).mean() / weight.mean()
        return loss, {"loss": loss.detach(), "mse": err.mean().detach()}


class MouthFillStage(Stage):
    name = "mouth_fill"

    def __init__(self, rt: Runtime, tc: TrainConfig, run_dir: pathlib.Path, data: str, generator: str,
                 config: MouthFillConfig, state: dict | None = None):
        from avatar_service.runtime.models import resolve_model

        self.rt, self.run_dir = rt, run_dir
        pairs = build_pairs(data, config)
        gen, _ = resolve_model(generator)  # default, tiny (tests) or a folder
        probe = MouthFillModel(config)
        probe.take_autoencoder(gen)
        log.info("encoding %d pairs with the generator's autoencoder", len(pairs.warped))
        self.z_warp, self.z_real = encode_all(probe, pairs.warped), encode_all(probe, pairs.real)
        self.z_refs = encode_all(probe, pairs.refs)
        if state is None:  # the residual's spread sets the diffusion's scale (as the generator's denoiser stage)
            scale = round(float((self.z_real - self.z_warp).std()), 4)
            net = config.networks
            config = dataclasses.replace(config, networks=dataclasses.replace(
                net, denoiser=dataclasses.replace(net.denoiser, residual_scale=scale)))
        else:
            config = MouthFillConfig.from_dict(state["config"])
        self.model = MouthFillModel(config)
        self.model.take_autoencoder(gen)
        if state is not None:
            self.model.load_state_dict(state["model"])
        sampling = config.networks.serving.sampling
        max_t = min(config.networks.denoiser.num_train_timesteps, int(config.networks.denoiser.num_train_timesteps * (sampling.start_strength + 0.1)))
        self.trainable = MouthFillObjective(self.model, max_t)
        self.pairs = pairs
        self.lips = torch.from_numpy(pairs.lips)
        f = config.networks.autoencoder.downsample
        inner = F.avg_pool2d(torch.from_numpy(pairs.inner)[:, None], f)  # (N, 1, h, w) share of each cell
        self.weight = 0.2 + tc.mask_weight * inner
        self.clip = torch.from_numpy(pairs.clip).long()
        self.batch_size = tc.batch_size
        rng = np.random.default_rng(0)
        self.shown = np.sort(rng.choice(len(pairs.warped), size=min(8, len(pairs.warped)), replace=False))
        log.info("mouth fill: %d pairs, residual scale %.4f, timesteps < %d", len(pairs.warped),
                 config.networks.denoiser.residual_scale, max_t)

    def batch(self, rng):
        i = torch.from_numpy(rng.integers(0, len(self.z_real), self.batch_size))
        return {"z_real": self.z_real[i], "z_warp": self.z_warp[i], "z_ref": self.z_refs[self.clip[i]],
                "lips": self.lips[i], "weight": self.weight[i]}

    def loss(self, model, batch):
        return model(**batch)

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "config": self.model.config.to_dict()}

    @torch.no_grad()
    def generate(self, idx: np.ndarray) -> np.ndarray:
        i = torch.from_numpy(idx).long()
        c, h, w = self.model.config.networks.latent_shape
        noise = torch.randn((1, c, h, w), generator=torch.Generator().manual_seed(0)).expand(len(i), -1, -1, -1)
        z0 = self.model.sample(self.z_warp[i], self.z_refs[self.clip[i]], self.lips[i], noise)
        return to_images(self.model.decode(z0))

    def write_samples(self, step: int, logger: Logger) -> None:
        """Rows: real, warped (plain interior), generated; on fixed training pairs."""
        from PIL import Image

        gen = self.generate(self.shown)
        rows = [np.concatenate(list(x), axis=1) for x in (self.pairs.real[self.shown], self.pairs.warped[self.shown], gen)]
        sheet = np.concatenate(rows, axis=0).repeat(2, 0).repeat(2, 1)
        out = self.run_dir / "samples" / f"step_{step:06d}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(sheet).save(out)
        logger.image(step, "mouth_fill/samples", sheet)

    def finish(self, logger: Logger) -> pathlib.Path:
        return self.model.save_pretrained(self.run_dir / "model")
