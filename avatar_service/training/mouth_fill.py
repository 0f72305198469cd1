"""`avatarlab train mouth-fill`: the inner-mouth latent denoiser (model/mouth_fill.py).

Training pairs come from the train split only (never the held-out identities): each clip's first frame
is the portrait, warped by the warp renderer to every frame's *measured* geometry (the oracle path of
`avatarlab eval`, plain interior drawn) and placed like the real head; the pair is (warped crop, real
crop) around the target mouth, kept where the mouth opens wider than the portrait's own (the only
frames the fill ever runs on). The target is the warped crop with the real mouth's inside pasted in
(`interior_targets`). The generator's trained autoencoder is copied in and frozen; latents are encoded
once. The loss is v-prediction on the residual (target - warped latent), weighted on the real inner lips.
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

from avatar_service.evaluation.mouth_fill import oracle_pairs
from avatar_service.model.mouth_fill import MouthFillConfig, MouthFillModel
from avatar_service.training.config import TrainConfig
from avatar_service.training.loop import Stage
from avatar_service.training.runtime import Logger, Runtime

log = logging.getLogger(__name__)
CACHE = pathlib.Path.home() / ".cache" / "avatarlab" / "mouth_fill"
PAIRS_VERSION = 1
TRAIN_STRENGTH = 0.6


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
    crop_cfg = cfg.crop
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
        got, ref = oracle_pairs(crops, mesh3d, basis, ref_mesh, crop_cfg)
        got = [g[:4] for g in got]
        rows += got
        owner += [len(refs)] * len(got)
        refs.append(ref)
    w, r, lips, inner = (np.stack(x) for x in zip(*rows))
    pairs = Pairs(w, r, lips, inner.astype(np.float32), np.asarray(owner, np.int32), np.stack(refs))
    pairs.save(path)
    log_fn(f"mouth-fill pairs: {len(w)} frames of {len(refs)} clips -> {path}")
    return pairs


def interior_targets(pairs: Pairs) -> np.ndarray:
    """What the model learns to draw: the warped crop with the real mouth's inside pasted into the real
    inner lips (feathered by a pixel). Elsewhere the warped crop and the real frame differ by head pose,
    lighting and misregistration, none of which the fill is shown or should sample; so the residual it
    diffuses is the interior alone (tried: the whole real crop as target left sampled blotches all over
    the crop after 500 steps)."""
    import cv2

    alpha = np.stack([cv2.GaussianBlur(m, (0, 0), 0.7) for m in pairs.inner])[..., None]
    return np.clip(pairs.warped + alpha * (pairs.real.astype(np.float32) - pairs.warped) + 0.5, 0, 255).astype(np.uint8)


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
        self.target = interior_targets(pairs)
        self.z_warp, self.z_real = encode_all(probe, pairs.warped), encode_all(probe, self.target)
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
        # trained over the first 60% of the schedule: any serving strength up to 0.5 is covered
        max_t = int(config.networks.denoiser.num_train_timesteps * TRAIN_STRENGTH)
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
        """Rows: target (real interior), warped (plain interior), generated; on fixed training pairs."""
        from PIL import Image

        gen = self.generate(self.shown)
        rows = [np.concatenate(list(x), axis=1) for x in (self.target[self.shown], self.pairs.warped[self.shown], gen)]
        sheet = np.concatenate(rows, axis=0).repeat(2, 0).repeat(2, 1)
        out = self.run_dir / "samples" / f"step_{step:06d}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(sheet).save(out)
        logger.image(step, "mouth_fill/samples", sheet)

    def finish(self, logger: Logger) -> pathlib.Path:
        from avatar_service.runtime.export import export_fill_onnx

        out = self.model.save_pretrained(self.run_dir / "model")
        export_fill_onnx(MouthFillModel.from_pretrained(out), out / "onnx")  # the fp16-rounded weights, as served
        return out
