"""Stage 2: the audio encoder and the latent denoiser, with the autoencoder frozen (DiffTalk, sec. 3).

Per training sample (frame i of a clip):
  z0       = E(region_i)                     target latent
  z_masked = E(region_i with the mask grey)  pose, skin and background; no lip shape
  z_ref    = E(region_j), j another frame    identity and lip appearance
  tokens   = AudioEncoder(mel windows of i) + lip token of the *measured* lip coefficients of frame i
             (null tokens with p = cfg_drop, for classifier-free guidance)
  lip map  = (models with one) frame j's lip anchor + the offsets of those coefficients: where frame i's
             lips are, drawn from the reference as serving draws it
  x0  = (z0 - z_ref) / residual_scale        (or z0 when residual_scale = 0)
  x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps;   target v = sqrt(abar_t) eps - sqrt(1 - abar_t) x0
  loss = mean(w * (M(x_t, t, z_masked, z_ref, tokens) - v)^2) + lip_weight * |lip_head(audio) - lips_i|^2
         w = mask_weight inside the mask, 1 outside
At sampling time the lip token comes from the audio's predicted coefficients.
Latents of every frame are computed once and cached, so a step costs only the audio encoder and M
(plus encoding the references when they are moved: `ref_shift`).

Still face photos (`--faces`) add people the clips lack: target = the photo, pose = the photo masked,
reference = the photo moved by up to `ref_shift` px (at least 2: a photo that is its own reference
would teach copying the reference), audio = silence, lip token = the neutral one (0, the person's own
mean shape, which on a photo is its shape) and no lip regression. They teach the two things unseen
people need: keep this person's mouth, put it where the pose says.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import pathlib

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from avatar_service.model import FaceGenerator
from avatar_service import media
from avatar_service.training.config import TrainConfig
from avatar_service.model.features import clip_windows
from avatar_service.training.dataset import (FrameIndex, TalkingDataset, audio_windows, clip_features, load_face_photos,
                                             mask_regions, to_tensor, to_uint8)
from avatar_service.training.loop import Stage
from avatar_service.training.runtime import Logger, Runtime, eval_mode

log = logging.getLogger(__name__)


@torch.no_grad()
def lip_basis(clips, components: int) -> tuple[np.ndarray, np.ndarray]:
    """PCA of the clips' centred lip offsets: (80, k) orthonormal basis and (k,) std of each
    coefficient, so coefficients = offsets @ basis / std are whitened. Signs fixed (largest loading
    positive) so the same data always gives the same basis."""
    x = np.concatenate([c.lips[np.isfinite(c.lips).all(axis=1)] for c in clips if c.lips is not None])
    if len(x) < components:
        raise ValueError(f"{len(x)} frames with lip landmarks: too few for {components} lip components")
    _, sv, vt = np.linalg.svd(x - x.mean(axis=0), full_matrices=False)
    basis = vt[:components].T
    basis *= np.sign(basis[np.abs(basis).argmax(axis=0), np.arange(components)])
    std = sv[:components] / np.sqrt(len(x) - 1)
    return basis.astype(np.float32), std.astype(np.float32)


def lip_coefficients(lips: np.ndarray, basis: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(N, 80) offsets (NaN rows allowed) -> (N, k) whitened coefficients, NaN where unmeasured."""
    return (lips @ basis / std).astype(np.float32)


class DenoiserObjective(nn.Module):
    """The trainable part (audio encoder + denoiser) and its v-prediction loss."""

    def __init__(self, generator: FaceGenerator, loss_weight: torch.Tensor, tc: TrainConfig):
        super().__init__()
        self.audio_encoder, self.denoiser = generator.audio_encoder, generator.denoiser
        self.prediction_type = generator.config.denoiser.prediction_type
        self.to_target = generator.config.denoiser.to_target
        self.lip_weight, self.lip_noise = tc.lip_weight, tc.lip_noise
        abar = generator.make_scheduler("ddim").alphas_cumprod.float()
        self.register_buffer("sqrt_abar", abar.sqrt(), persistent=False)
        self.register_buffer("sqrt_one_minus_abar", (1 - abar).sqrt(), persistent=False)
        self.register_buffer("loss_weight", loss_weight, persistent=False)  # (1, 1, h, w)

    def forward(self, z0, z_masked, z_ref, windows, t, noise, drop, lips=None, anchor=None, lip_scale=None):
        """lips (B, k) measured, whitened lip coefficients (NaN where unmeasured): shown to the denoiser
        (with a little noise) and regressed by the audio encoder's lip head. anchor (B, 40, 2): the
        reference frame's lip anchor, for models with a lip map (default: the model's average lips);
        lip_scale (B, 2) how the sample was stretched (shape_aug), so the map's offsets stretch with it."""
        audio, lips_pred = self.audio_encoder.encode(windows)  # (B, K+1, D), (B, k)
        logs = {}
        lip_loss = 0.0
        points = None
        if lips_pred is not None:
            known = torch.isfinite(lips).all(dim=1)
            lips = torch.nan_to_num(lips)
            lip_loss = (((lips_pred.float() - lips) ** 2).mean(dim=1) * known).sum() / known.sum().clamp_min(1)
            logs["lip_mse"] = lip_loss.detach()
            lips = lips + self.lip_noise * torch.randn_like(lips)
            if self.audio_encoder.lip_map:  # unmeasured frames draw no map (NaN points draw nothing)
                offsets = self.audio_encoder.lip_offsets(lips)
                if lip_scale is not None:
                    offsets = offsets * lip_scale[:, None, :]
                points = (self.audio_encoder.lip_rest if anchor is None else anchor) + offsets
                points = torch.where(known[:, None, None], points, torch.full_like(points, float("nan")))
        tokens = self.audio_encoder.tokens(audio, lips)
        # torch.where rather than skipping the encoder: every parameter gets a gradient each step (DDP).
        tokens = torch.where(drop[:, None, None], self.audio_encoder.null_tokens.to(tokens.dtype).expand_as(tokens), tokens)
        a = self.sqrt_abar[t][:, None, None, None]
        s = self.sqrt_one_minus_abar[t][:, None, None, None]
        x0 = self.to_target(z0, z_ref)
        z_t = a * x0 + s * noise
        if self.prediction_type == "v_prediction":
            target = a * noise - s * x0
        elif self.prediction_type == "epsilon":
            target = noise
        else:
            raise ValueError(f"prediction_type {self.prediction_type!r} is not trainable here: use v_prediction or epsilon")
        pred = self.denoiser(z_t, t, z_masked, z_ref, tokens, points).float()
        err = (pred - target) ** 2
        diffusion = (self.loss_weight * err).mean() / self.loss_weight.mean()
        loss = diffusion + self.lip_weight * lip_loss
        return loss, {"loss": loss.detach(), "mse": err.mean().detach(), **logs}


def stretch(latents: list[torch.Tensor], points: torch.Tensor | None, scale: torch.Tensor, centre: torch.Tensor,
            layout) -> tuple[list[torch.Tensor], torch.Tensor | None]:
    """Stretch region latents (B, C, h, w) and crop-relative lip points (B, 40, 2) by `scale` (B, 2)
    about `centre` (2,) (crop-relative), the same for each: a face with a wider or taller mouth."""
    s, top = layout.crop_px, layout.region_rows[0]
    h, w = layout.region_shape
    to_norm = lambda p: torch.stack([p[..., 0] * s / w * 2 - 1, (p[..., 1] * s - top) / h * 2 - 1], dim=-1)
    c = to_norm(centre)
    theta = torch.zeros(len(scale), 2, 3, device=scale.device)
    theta[:, 0, 0], theta[:, 1, 1] = 1 / scale[:, 0], 1 / scale[:, 1]
    theta[:, :, 2] = c * (1 - 1 / scale)  # output u samples the input at c + (u - c) / scale
    grid = F.affine_grid(theta, list(latents[0].shape), align_corners=False)
    out = [F.grid_sample(z, grid, mode="bilinear", padding_mode="border", align_corners=False) for z in latents]
    if points is not None:
        points = centre + (points - centre) * scale[:, None, :]
    return out, points


def move(images: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) images with their content moved by d (B, 2) pixels (x, y); border pixels repeat."""
    b, _, h, w = images.shape
    theta = torch.zeros(b, 2, 3, device=images.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, :, 2] = -2 * d / torch.tensor([w, h], dtype=d.dtype, device=d.device)  # output u samples input u - d
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _init_generator(path: str, config=None) -> FaceGenerator:
    """A generator from a saved model: the autoencoder stage's (autoencoder and latent statistics; the
    audio encoder and denoiser start fresh) or a trained generator to fine-tune (every weight whose name
    and shape still match is loaded). The config is the saved one (defaults for fields it predates), or
    `config` to grow the architecture: the denoiser's first conv keeps its trained input channels and
    new ones (a lip map) start at zero, so fine-tuning starts from the trained model's behaviour."""
    from safetensors.torch import load_file

    from avatar_service.model import GeneratorConfig
    from avatar_service.model.checkpoint import WEIGHTS_NAME, load_config

    g = FaceGenerator(config or GeneratorConfig.from_dict(load_config(path, "generator", "AvatarLab model")))
    saved = load_file(str(pathlib.Path(path) / WEIGHTS_NAME))
    mine = g.state_dict()
    conv_in = "denoiser.unet.conv_in.weight"
    if conv_in in saved and saved[conv_in].shape[1] < mine[conv_in].shape[1] and saved[conv_in].shape[0] == mine[conv_in].shape[0]:
        grown = torch.zeros_like(mine[conv_in])
        grown[:, : saved[conv_in].shape[1]] = saved[conv_in]
        saved[conv_in] = grown
    trained = g.config.denoiser.residual_scale > 0 or any(k.startswith("audio_encoder.lip_") for k in saved)
    keep = {k: v for k, v in saved.items() if k in mine and v.shape == mine[k].shape
            and (trained or k.startswith("autoencoder.") or k in ("latent_mean", "latent_std"))}
    missing = [k for k in mine if (k.startswith("autoencoder.") or k.startswith("latent_")) and k not in keep]
    if missing:
        raise ValueError(f"--init {path}: no autoencoder weights for {missing[:3]}...: is it the autoencoder stage's model?")
    fresh = sorted({k.split(".")[0] + "." + k.split(".")[1] for k in mine if k not in keep and "." in k})
    log.info("--init %s: loaded %d tensors%s", path, len(keep), f"; starting fresh: {', '.join(fresh)}" if fresh else "")
    g.load_state_dict(keep, strict=False)
    return g


def _with_residual_scale(cfg, scale: float):
    log.info("residual diffusion: z0 - z_ref has std %.3f (latent std is 1)", scale)
    return dataclasses.replace(cfg, denoiser=dataclasses.replace(cfg.denoiser, residual_scale=round(float(scale), 4)))


class DenoiserStage(Stage):
    name = "denoiser"

    def __init__(self, rt: Runtime, tc: TrainConfig, run_dir: pathlib.Path, data: str, init: str | None,
                 state: dict | None = None, config=None, faces: str | None = None):
        self.rt, self.tc, self.run_dir = rt, tc, run_dir
        if state is not None:
            from avatar_service.model import GeneratorConfig

            self.generator = FaceGenerator(GeneratorConfig.from_dict(state["generator_config"]))
            self.generator.load_state_dict(state["generator"])
        elif init:
            self.generator = _init_generator(init, config)
        else:
            raise ValueError("denoiser: --init MODEL_DIR (the autoencoder stage's RUN_DIR/model) is required")
        g = self.generator
        if torch.all(g.latent_mean == 0) and torch.all(g.latent_std == 1):
            log.warning("latent statistics are unset (mean 0, std 1): was --init trained by the autoencoder stage?")
        g.to(rt.device)
        g.autoencoder.requires_grad_(False).eval()
        self.ds = TalkingDataset(data, g.config.layout, g.config.mel)
        self.mask = torch.from_numpy(g.config.layout.region_mask()).to(rt.device)  # (H, W)
        clips = self.ds.clips
        self.offsets = np.cumsum([0] + [len(c) for c in clips])
        self.z, self.z_masked = self._latents(clips, g)
        self.train_index = FrameIndex([c for c in clips if c.split == "train"])
        self.train_pos = [clips.index(c) for c in self.train_index.clips]
        if state is None and tc.residual and g.config.denoiser.residual_scale == 0:
            g.config = _with_residual_scale(g.config, self._residual_std())
        self.config = cfg = g.config
        self.lip_pca = None
        self.lips = None
        if cfg.audio.lip_components:
            if any(c.lips is None for c in clips):
                raise ValueError(f"{data}: clips without lip landmarks; rebuild it with `avatarlab prepare`")
            self.lip_pca = ((state["lip_basis"].numpy(), state["lip_std"].numpy()) if state is not None and "lip_basis" in state
                            else lip_basis(self.train_index.clips, cfg.audio.lip_components))
            self.lips = torch.from_numpy(np.concatenate([lip_coefficients(c.lips, *self.lip_pca) for c in clips])).to(rt.device)
        # The training people's average lips: the lip map's fallback anchor, and shape_aug's centre
        rest = None
        if all(c.lip_anchor is not None for c in self.train_index.clips):
            rest = np.nanmean(np.concatenate([c.lip_anchor for c in self.train_index.clips]), axis=0)  # (40, 2)
        self.mouth_centre = None if rest is None else torch.from_numpy(rest.mean(axis=0)).to(rt.device)
        self.anchor = None
        if cfg.denoiser.lip_map.enabled:
            self.anchor = torch.from_numpy(np.concatenate([c.lip_anchor for c in clips])).to(rt.device)
            if state is None:  # the map's geometry travels with the model
                enc = g.audio_encoder
                enc.lip_basis.copy_(torch.from_numpy(self.lip_pca[0]))
                enc.lip_std.copy_(torch.from_numpy(self.lip_pca[1]))
                enc.lip_rest.copy_(torch.from_numpy(rest))
        self.ema = None
        if tc.ema_decay > 0:
            self.ema = copy.deepcopy(g).requires_grad_(False).eval()
            if state is not None and "ema" in state:
                self.ema.load_state_dict(state["ema"])

        _, lh, lw = cfg.latent_shape
        latent_mask = F.adaptive_avg_pool2d(self.mask[None, None], (lh, lw))  # (1, 1, h, w)
        weight = 1.0 + (tc.mask_weight - 1.0) * latent_mask
        self.trainable = DenoiserObjective(g, weight, tc).to(rt.device)

        feat = cfg.feature_extractor()
        feats = clip_features(self.ds, feat, run_dir / "cache", json.dumps(dataclasses.asdict(cfg.features)) + json.dumps(dataclasses.asdict(cfg.mel)))
        windows = [audio_windows(f, np.arange(len(c)), self.ds.fps, feat, cfg.window) for f, c in zip(feats, clips)]
        # (N, K, dims, M) on the device, 7 KB (log-mel) to 35 KB (Whisper) a frame in fp16: batches are pure indexing
        self.windows = torch.from_numpy(np.concatenate(windows)).half().to(rt.device)
        self.faces = None
        if faces:
            self.faces = load_face_photos(faces, cfg.layout, run_dir / "cache")  # (N, H, W, 3) uint8 regions
            self.face_z, self.face_z_masked = (z.to(rt.device) for z in self._encode_regions(self.faces, g))
            # what serving computes for a silent stream: the middle frame of 2 s of digital silence
            quiet = clip_windows(np.zeros(2 * cfg.mel.sample_rate_hz, np.float32), 50, self.ds.fps, feat, cfg.window)[25]
            self.silence = torch.from_numpy(quiet[None]).to(rt.device)
            log.info("denoiser data: %d clip frames, %d face photos (%.0f%% of each batch)",
                     len(self.train_index), len(self.faces), 100 * tc.faces_fraction)
        val = [i for i, c in enumerate(clips) if c.split == "val"] or self.train_pos
        self.val_clip = val[0]
        vr = np.random.default_rng(1234)  # fixed frames and noise: grids comparable across steps
        vidx = FrameIndex([clips[i] for i in val])
        rows = vidx.sample(vr, 4)
        refs = vidx.references(vr, rows)
        gpos = np.array([val[c] for c in rows[:, 0]])
        self.sample_flat = self.offsets[gpos] + rows[:, 1]
        self.sample_ref_flat = self.offsets[gpos] + refs
        self.sample_noise = torch.from_numpy(vr.standard_normal((4, *cfg.latent_shape)).astype(np.float32))

    # -- latent cache ----------------------------------------------------------------------------
    def _latents(self, clips, g: FaceGenerator) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, C, h, w) latents of every frame's region and masked region, cached on disk."""
        h = hashlib.sha1(self.ds.manifest_digest.encode() + json.dumps(
            [dataclasses.asdict(g.config.layout), dataclasses.asdict(g.config.autoencoder)]).encode())
        for k, v in sorted(g.autoencoder.state_dict().items()):
            h.update(k.encode())
            h.update(v.detach().float().cpu().numpy().tobytes())
        h.update(g.latent_mean.cpu().numpy().tobytes() + g.latent_std.cpu().numpy().tobytes())
        path = self.run_dir / "cache" / f"latents_{h.hexdigest()[:16]}.pt"
        if self.rt.is_main and not path.exists():
            z, zm = zip(*(self._encode_regions(c.regions, g) for c in clips))
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"z": torch.cat(z).half(), "z_masked": torch.cat(zm).half()}, path.with_suffix(".tmp"))
            path.with_suffix(".tmp").replace(path)
            log.info("cached latents of %d frames in %s", len(torch.cat(z)), path)
        self.rt.barrier()
        d = torch.load(path, map_location="cpu")
        return d["z"].float().to(self.rt.device), d["z_masked"].float().to(self.rt.device)

    @torch.no_grad()
    def _encode_regions(self, regions: np.ndarray, g: FaceGenerator) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, H, W, 3) uint8 regions -> their latents and their masked latents, (N, C, h, w) on the CPU."""
        z, zm = [], []
        with self.rt.autocast():
            for i in range(0, len(regions), 256):
                x = to_tensor(regions[i: i + 256]).to(self.rt.device)
                z.append(g.encode(x).float().cpu())
                zm.append(g.encode(mask_regions(x, self.mask)).float().cpu())
        return torch.cat(z), torch.cat(zm)

    def _pairs(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """n training (frame, reference frame) pairs as flat indices into the latent cache."""
        rows = self.train_index.sample(rng, n)
        refs = self.train_index.references(rng, rows)
        base = self.offsets[np.array(self.train_pos)[rows[:, 0]]]
        return base + rows[:, 1], base + refs

    def _residual_std(self, n: int = 4096) -> float:
        """Std of z0 - z_ref over training pairs drawn as `batch` draws them."""
        i, j = self._pairs(np.random.default_rng(7), n)
        return float((self.z[i] - self.z[j]).std())

    # -- training --------------------------------------------------------------------------------
    @torch.no_grad()
    def _moved_references(self, regions: np.ndarray, rng: np.random.Generator, shift: float) -> torch.Tensor:
        """Latents of (n, H, W, 3) uint8 regions each moved by up to `shift` px in x and y, encoded by
        the frozen autoencoder."""
        d = torch.from_numpy(rng.uniform(-shift, shift, (len(regions), 2)).astype(np.float32))
        x = move(to_tensor(regions).to(self.rt.device), d.to(self.rt.device))
        with self.rt.autocast():
            return self.generator.encode(x).float()

    def batch(self, rng):
        b, dev = self.tc.batch_size, self.rt.device
        n_faces = 0 if self.faces is None else int(rng.binomial(b, self.tc.faces_fraction))
        fi, fj = self._pairs(rng, b - n_faces)
        i, j = torch.from_numpy(fi).to(dev), torch.from_numpy(fj).to(dev)
        z0, z_masked = self.z[i], self.z_masked[i]
        z_ref = self._moved_references(self._pixels(fj), rng, self.tc.ref_shift) if self.tc.ref_shift > 0 else self.z[j]
        anchor = None if self.anchor is None else self.anchor[j]
        windows = self.windows[i].float()
        lips = None if self.lips is None else self.lips[i]
        if n_faces:
            k = rng.integers(0, len(self.faces), n_faces)
            kt = torch.from_numpy(k).to(dev)
            z0, z_masked = torch.cat([z0, self.face_z[kt]]), torch.cat([z_masked, self.face_z_masked[kt]])
            z_ref = torch.cat([z_ref, self._moved_references(self.faces[k], rng, max(self.tc.ref_shift, 2.0))])
            windows = torch.cat([windows, self.silence.float().expand(n_faces, *self.silence.shape[1:])])
            if lips is not None:  # NaN: no lip regression; the denoiser sees the neutral token
                lips = torch.cat([lips, torch.full((n_faces, lips.shape[1]), float("nan"), device=dev)])
            if anchor is not None:
                anchor = torch.cat([anchor, self.generator.audio_encoder.lip_rest.to(anchor).expand(n_faces, -1, -1)])
        scale = torch.ones(b, 2, device=dev)
        if self.tc.shape_aug > 0 and self.mouth_centre is not None:
            a = self.tc.shape_aug
            # half the batch as it is: resampled latents decode a little softer, and the target stays sharp
            sc = np.where(rng.random((b, 1)) < 0.5, rng.uniform(1 - a, 1 + a, (b, 2)), 1.0)
            scale = torch.from_numpy(sc.astype(np.float32)).to(dev)
            (z0, z_masked, z_ref), anchor = stretch([z0, z_masked, z_ref], anchor, scale, self.mouth_centre, self.config.layout)
        return {
            "z0": z0, "z_masked": z_masked, "z_ref": z_ref,
            "windows": windows,
            "t": torch.randint(0, self.config.denoiser.num_train_timesteps, (b,), device=dev),
            "noise": torch.randn(z0.shape, device=dev),
            "drop": torch.rand(b, device=dev) < self.tc.cfg_drop,
            **({"lips": lips} if lips is not None else {}),
            **({"anchor": anchor, "lip_scale": scale} if anchor is not None else {}),
        }

    def loss(self, model, batch):
        return model(**batch)

    def after_step(self, step: int) -> None:
        if self.ema is None:
            return
        d = min(self.tc.ema_decay, (1 + step) / (10 + step))  # short warm-up so early samples are not stale
        with torch.no_grad():
            for name in ("audio_encoder", "denoiser"):
                src, dst = getattr(self.generator, name), getattr(self.ema, name)
                for pe, p in zip(dst.parameters(), src.parameters()):
                    pe.lerp_(p.detach(), 1 - d)

    def state_dict(self) -> dict:
        out = {"generator_config": self.config.to_dict(), "generator": self.generator.state_dict()}
        if self.lip_pca is not None:
            # the basis from the first start, so a resumed run keeps the coefficients it was trained on
            out["lip_basis"], out["lip_std"] = (torch.from_numpy(a) for a in self.lip_pca)
        if self.ema is not None:
            out["ema"] = self.ema.state_dict()
        return out

    @property
    def served(self) -> FaceGenerator:
        """The weights that samples and the saved model use."""
        return self.ema if self.ema is not None else self.generator

    # -- samples ---------------------------------------------------------------------------------
    def _generate(self, flat: np.ndarray, ref_flat: np.ndarray, noise: torch.Tensor) -> torch.Tensor:
        """Regions generated for flat frame indices by the served weights, through the serving sampler."""
        from avatar_service.runtime.backend import TorchBackend
        from avatar_service.runtime.sampler import sample_latents

        g, dev = self.served, self.rt.device
        i, j = torch.from_numpy(flat).to(dev), torch.from_numpy(ref_flat).to(dev)
        with eval_mode(g):
            b = TorchBackend(g, device=str(dev))
            n = lambda t: t.float().cpu().numpy()  # noqa: E731
            tokens, offsets = b.audio(n(self.windows[i]))
            points = None if offsets is None else n(self.anchor[j]) + offsets
            z = sample_latents(b, n(noise), n(self.z_masked[i]), n(self.z[j]), tokens, self.tc.sample_steps,
                               g.config.serving.sampling.default_guidance, lip_points=points)
            return torch.from_numpy(b.decode(z))

    def _pixels(self, flat: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 real regions of flat frame indices."""
        ci = np.searchsorted(self.offsets, flat, side="right") - 1
        return np.stack([self.ds.clips[c].regions[f - self.offsets[c]] for c, f in zip(ci, flat)])

    def write_samples(self, step: int, logger: Logger) -> None:
        real = self._pixels(self.sample_flat)
        masked = to_uint8(mask_regions(to_tensor(real).to(self.rt.device), self.mask))
        gen = to_uint8(self._generate(self.sample_flat, self.sample_ref_flat, self.sample_noise))
        ref = self._pixels(self.sample_ref_flat)
        img = media.grid([[m, g, r, rf] for m, g, r, rf in zip(masked, gen, real, ref)])
        media.save_png(self.run_dir / "samples" / f"denoiser_{step:08d}.png", img, scale=2)
        logger.image(step, "denoiser/masked_generated_real_reference", img)

    def write_video(self) -> pathlib.Path:
        """A val clip: real crop | crop with the generated region pasted in, with the clip's sound."""
        ci = self.val_clip
        clip = self.ds.clips[ci]
        crops, audio = self.ds.load_media(clip)
        n = min(len(clip), int(self.tc.video_seconds * self.ds.fps))
        valid = np.flatnonzero(clip.valid)
        ref = int(valid[len(valid) // 2]) if len(valid) else 0
        flat = self.offsets[ci] + np.arange(n)
        noise = self.sample_noise[:1]  # one noise for every frame: steadier video
        gen = []
        for k in range(0, n, 32):
            f = flat[k: k + 32]
            gen.append(to_uint8(self._generate(f, np.full_like(f, self.offsets[ci] + ref), noise.expand(len(f), -1, -1, -1))))
        gen = np.concatenate(gen).astype(np.float32)
        soft = self.config.layout.region_mask(soft=True)[None, :, :, None]
        r0 = self.config.layout.region_rows[0]
        out = crops[:n].copy()
        out[:, r0:] = np.round(out[:, r0:] * (1 - soft) + gen * soft).astype(np.uint8)
        frames = np.concatenate([crops[:n], out], axis=2)  # side by side
        seg = audio[: int(round(n / self.ds.fps * self.config.mel.sample_rate_hz))]
        return media.write_mp4(self.run_dir / "samples" / f"val_{clip.id}.mp4", frames, self.ds.fps, seg,
                               self.config.mel.sample_rate_hz)

    def finish(self, logger: Logger) -> pathlib.Path:
        out = self.served.save_pretrained(self.run_dir / "model")
        log.info("saved %s", out)
        video = self.write_video()
        log.info("wrote %s", video)
        return out
