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
from avatar_service.model.mouth_fill import MouthFillModel, sample_fill

EMBEDDED_FILL = pathlib.Path(__file__).resolve().parents[1] / "assets" / "mouth_fill"
GRAPHS = ("encoder", "denoiser", "decoder")


class FillNetworks:
    """The fill model's three stages: by onnxruntime where the folder has their graphs (`onnx/`, written
    by training; 3-4x faster than torch for these small convolutions on a CPU), else by torch. One
    thread each: a server runs many streams side by side."""

    def __init__(self, model: MouthFillModel, onnx_dir: pathlib.Path | None = None):
        self.model, self.config = model, model.config
        self.sessions = None
        if onnx_dir is not None and all((onnx_dir / f"{g}.onnx").exists() for g in GRAPHS):
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = opts.inter_op_num_threads = 1
            self.sessions = {g: ort.InferenceSession(str(onnx_dir / f"{g}.onnx"), opts, providers=["CPUExecutionProvider"])
                             for g in GRAPHS}

    def _run(self, graph: str, **inputs) -> torch.Tensor:
        feed = {k: v.numpy() if v.dtype == torch.int64 else v.numpy().astype(np.float32) for k, v in inputs.items()}
        return torch.from_numpy(self.sessions[graph].run(None, feed)[0])

    @torch.no_grad()
    def encode(self, crop: torch.Tensor) -> torch.Tensor:
        return self._run("encoder", crop=crop) if self.sessions else self.model.encode(crop)

    @torch.no_grad()
    def predict(self, x_t, t, z_warp, z_ref, lip_points) -> torch.Tensor:
        if self.sessions:
            return self._run("denoiser", x_t=x_t, t=t.long(), z_warp=z_warp, z_ref=z_ref, lip_points=lip_points)
        return self.model.predict(x_t, t, z_warp, z_ref, lip_points)

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self._run("decoder", z=z) if self.sessions else self.model.decode(z)

    def sample(self, z_warp, z_ref, lip_points, noise, steps: int | None = None) -> torch.Tensor:
        return sample_fill(self.config, self.predict, z_warp, z_ref, lip_points, noise, steps)


@functools.lru_cache(maxsize=4)
def load_fill_model(path: str = "default") -> FillNetworks:
    """The embedded fill model ('default') or a folder saved by `avatarlab train mouth-fill`, shared per
    process, run by its ONNX graphs: the folder's `onnx/`, else exported once into the user cache (the
    embedded model ships its weights alone, and the graphs would double its size in the repository)."""
    folder = EMBEDDED_FILL if path == "default" else pathlib.Path(path)
    if not (folder / "config.json").exists():
        raise FileNotFoundError(f"{folder} has no mouth fill model (config.json): run `avatarlab train mouth-fill`")
    model = MouthFillModel.from_pretrained(folder)
    return FillNetworks(model, folder / "onnx" if (folder / "onnx").is_dir() else _cached_graphs(model, folder))


def _cached_graphs(model: MouthFillModel, folder: pathlib.Path) -> pathlib.Path | None:
    """~/.cache/avatarlab/mouth_fill/onnx-<weights' hash>, exported on first use; None (torch) where
    the export cannot run here."""
    import hashlib
    import logging
    import shutil
    import tempfile

    digest = hashlib.sha1((folder / "model.safetensors").read_bytes()).hexdigest()[:12]
    out = pathlib.Path.home() / ".cache" / "avatarlab" / "mouth_fill" / f"onnx-{digest}"
    if all((out / f"{g}.onnx").exists() for g in GRAPHS):
        return out
    try:
        from avatar_service.runtime.export import export_fill_onnx

        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = pathlib.Path(tempfile.mkdtemp(dir=out.parent))  # another process may export at the same time
        export_fill_onnx(model, tmp)
        try:
            tmp.replace(out)
        except OSError:  # another process got there first: keep its graphs
            shutil.rmtree(tmp, ignore_errors=True)
        return out
    except Exception as e:  # onnx or onnxruntime missing, read-only home: torch draws the same pixels, slower
        logging.getLogger(__name__).warning("mouth fill runs on torch (no ONNX graphs: %s)", e)
        return None


def _tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float() / 127.5 - 1


class DiffusionInterior:
    """Same interface as MouthInterior (`strength`, `fill`)."""

    def __init__(self, model: FillNetworks, image: np.ndarray, mesh: np.ndarray, plain: MouthInterior, seed: int = 0):
        self.model, self.plain = model, plain
        self.cfg = model.config.crop
        c, h, w = model.config.networks.latent_shape
        self.noise = torch.randn((1, c, h, w), generator=torch.Generator().manual_seed(seed))
        self.z_ref = model.encode(_tensor(MouthCrop.of(mesh, self.cfg).cut(image)))
        self._ring_px = max(2.0, 0.08 * self.cfg.px)

    def strength(self, target: np.ndarray) -> float:
        return self.plain.strength(target)

    def generate(self, warped_crop: np.ndarray, crop: MouthCrop, target: np.ndarray) -> np.ndarray:
        """The model's (px, px, 3) uint8 crop for a warped crop and the target mesh."""
        lips = torch.from_numpy((crop.points(np.asarray(target)[list(LIP_INDICES)]) / self.cfg.px).astype(np.float32))[None]
        z_warp = self.model.encode(_tensor(warped_crop))
        out = self.model.decode(self.model.sample(z_warp, self.z_ref, lips, self.noise))[0]
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
