"""Backends: torch and onnxruntime behind one small interface, so the sampler, the avatar precompute
and the engine never know which one runs.

Stage calls (encode, audio, denoise, decode) take and return numpy arrays. The sampler's inner loop
uses the device-side calls instead (condition, latent, denoise_step, decode_latent, host): the latent
stays a torch tensor on the backend's device between steps (CPU for onnxruntime, whose runs take host
arrays anyway), and a batch's conditioning is uploaded once."""
from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Protocol

import numpy as np
import torch

from avatar_service.model import FaceGenerator, GeneratorConfig
from avatar_service.model.generator import load_generator_config

ONNX_GRAPHS = ("encoder", "audio_encoder", "denoiser", "decoder")


class Backend(Protocol):
    name: str
    device: str
    config: GeneratorConfig
    lip_rest: np.ndarray | None  # (40, 2) crop-relative average lips (models with a lip map), else None

    def encode(self, region: np.ndarray) -> np.ndarray: ...  # (B,3,H,W) [-1,1] -> (B,C,h,w)
    # (B,K,dims,M) -> tokens (B,T,D) and lip offsets (B,40,2) in crop widths (None without a lip map)
    def audio(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]: ...
    def null_tokens(self, batch: int) -> np.ndarray: ...  # -> (B,T,D)
    # lip_points (B,40,2) crop-relative, for models with a lip map -> (B,C,h,w)
    def denoise(self, z_t, t, z_masked, z_ref, tokens, lip_points=None) -> np.ndarray: ...
    def decode(self, z: np.ndarray) -> np.ndarray: ...  # (B,C,h,w) -> (B,3,H,W)
    # -- device side, for the sampler ------------------------------------------------------------
    def condition(self, z_masked, z_ref, tokens, lip_points, guided: bool) -> "Conditioning": ...
    def latent(self, a: np.ndarray) -> torch.Tensor: ...  # float32 on the device
    def denoise_step(self, x: torch.Tensor, t: int, cond: "Conditioning") -> torch.Tensor: ...  # float32, 2B rows when guided
    def decode_latent(self, z: torch.Tensor) -> np.ndarray: ...  # (B,C,h,w) on the device -> (B,3,H,W)
    def host(self, x: torch.Tensor) -> np.ndarray: ...


@dataclasses.dataclass
class Conditioning:
    """One batch's conditioning as the backend's denoiser takes it, uploaded once per batch. Guided
    batches hold both halves: conditional rows, then the same rows with null audio tokens."""
    z_masked: object
    z_ref: object
    tokens: object
    lip_points: object | None
    rows: int


def _both_halves(backend, z_masked, z_ref, tokens, lip_points, guided: bool):
    """Guided sampling runs conditional and unconditional rows in one call: the conditioning twice, the
    second time with null audio tokens (lip points stay: they are geometry, the guidance is on audio)."""
    if not guided:
        return z_masked, z_ref, tokens, lip_points
    return (np.concatenate([z_masked, z_masked]), np.concatenate([z_ref, z_ref]),
            np.concatenate([tokens, backend.null_tokens(len(tokens))]),
            None if lip_points is None else np.concatenate([lip_points, lip_points]))


class TorchBackend:
    name = "torch"

    def __init__(self, generator: FaceGenerator, device: str = "cpu", dtype: torch.dtype = torch.float32):
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError("device 'cuda' was asked for but torch sees no CUDA device")
        self.generator = generator.to(device=device, dtype=dtype).eval()
        self.config = generator.config
        self.device, self.dtype = device, dtype
        self._null = None
        rest = generator.lip_rest
        self.lip_rest = None if rest is None else rest.float().cpu().numpy()

    def _t(self, a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(self.device, self.dtype)

    @staticmethod
    def _n(t: torch.Tensor) -> np.ndarray:
        return t.float().cpu().numpy()

    @torch.inference_mode()
    def encode(self, region):
        return self._n(self.generator.encode(self._t(region)))

    @torch.inference_mode()
    def audio(self, windows):
        tokens, offsets = self.generator.audio(self._t(windows))
        return self._n(tokens), None if offsets is None else self._n(offsets)

    @torch.inference_mode()
    def null_tokens(self, batch):
        if self._null is None:
            self._null = self._n(self.generator.null_tokens(1))
        return np.repeat(self._null, batch, axis=0)

    @torch.inference_mode()
    def denoise(self, z_t, t, z_masked, z_ref, tokens, lip_points=None):
        tt = torch.from_numpy(np.ascontiguousarray(t, dtype=np.int64)).to(self.device)
        lips = None if lip_points is None else torch.from_numpy(np.ascontiguousarray(lip_points, np.float32)).to(self.device)
        return self._n(self.generator.denoise(self._t(z_t), tt, self._t(z_masked), self._t(z_ref), self._t(tokens), lips))

    @torch.inference_mode()
    def decode(self, z):
        return self._n(self.generator.decode(self._t(z)))

    @torch.inference_mode()
    def condition(self, z_masked, z_ref, tokens, lip_points, guided):
        z_masked, z_ref, tokens, lip_points = _both_halves(self, z_masked, z_ref, tokens, lip_points, guided)
        lips = None if lip_points is None else torch.from_numpy(np.ascontiguousarray(lip_points, np.float32)).to(self.device)
        return Conditioning(self._t(z_masked), self._t(z_ref), self._t(tokens), lips, len(tokens))

    def latent(self, a):
        return torch.from_numpy(np.ascontiguousarray(a, np.float32)).to(self.device)

    @torch.inference_mode()
    def denoise_step(self, x, t, cond):
        if cond.rows != len(x):
            x = torch.cat([x, x])
        tt = torch.full((cond.rows,), t, dtype=torch.int64, device=self.device)
        return self.generator.denoise(x.to(self.dtype), tt, cond.z_masked, cond.z_ref, cond.tokens,
                                      cond.lip_points).float()

    @torch.inference_mode()
    def decode_latent(self, z):
        return self._n(self.generator.decode(z.to(self.dtype)))

    def host(self, x):
        return self._n(x)


class OnnxBackend:
    """onnxruntime over the graphs `avatarlab export` writes; CUDA when onnxruntime-gpu has it."""
    name = "onnx"

    def __init__(self, onnx_dir: str | os.PathLike, device: str = "cpu", threads: int = 0):
        import onnxruntime as ort

        onnx_dir = pathlib.Path(onnx_dir)
        self.config = load_generator_config(onnx_dir)
        self._null = np.load(onnx_dir / "null_tokens.npy")
        self.lip_rest = np.load(onnx_dir / "lip_rest.npy") if self.config.denoiser.lip_map.enabled else None
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise ValueError("device 'cuda' with backend 'onnx' needs onnxruntime-gpu (pip install avatarlab[gpu])")
            providers.insert(0, "CUDAExecutionProvider")
        self.device = device
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
        self.sessions = {}
        for g in ONNX_GRAPHS:
            path = onnx_dir / f"{g}.onnx"
            if not path.exists():
                raise FileNotFoundError(f"{path} is missing: run `avatarlab export` for this model")
            self.sessions[g] = ort.InferenceSession(str(path), opts, providers=providers)

    def _run(self, graph, **inputs):
        return self._run_all(graph, **inputs)[0]

    def _run_all(self, graph, **inputs):
        return self.sessions[graph].run(None, {k: np.ascontiguousarray(v) for k, v in inputs.items()})

    def encode(self, region):
        return self._run("encoder", region=region.astype(np.float32))

    def audio(self, windows):
        out = self._run_all("audio_encoder", windows=windows.astype(np.float32))
        return out[0], (out[1] if len(out) > 1 else None)

    def null_tokens(self, batch):
        return np.repeat(self._null, batch, axis=0)

    def denoise(self, z_t, t, z_masked, z_ref, tokens, lip_points=None):
        extra = {}
        if self.lip_rest is not None:
            if lip_points is None:  # the torch Denoiser's message, rather than onnxruntime's shape error
                raise ValueError("this model draws from a lip map: denoise needs lip_points")
            extra["lip_points"] = np.asarray(lip_points, np.float32)
        return self._run("denoiser", z_t=z_t.astype(np.float32), t=np.asarray(t, np.int64),
                         z_masked=z_masked.astype(np.float32), z_ref=z_ref.astype(np.float32),
                         tokens=tokens.astype(np.float32), **extra)

    def decode(self, z):
        return self._run("decoder", z=z.astype(np.float32))

    def condition(self, z_masked, z_ref, tokens, lip_points, guided):
        z_masked, z_ref, tokens, lip_points = _both_halves(self, z_masked, z_ref, tokens, lip_points, guided)
        f32 = lambda a: np.ascontiguousarray(a, np.float32)  # noqa: E731
        return Conditioning(f32(z_masked), f32(z_ref), f32(tokens), None if lip_points is None else f32(lip_points),
                            len(tokens))

    def latent(self, a):
        return torch.from_numpy(np.ascontiguousarray(a, np.float32))

    def denoise_step(self, x, t, cond):
        xin = x.numpy()
        if cond.rows != len(xin):
            xin = np.concatenate([xin, xin])
        return torch.from_numpy(self.denoise(xin, np.full(cond.rows, t), cond.z_masked, cond.z_ref, cond.tokens,
                                             cond.lip_points))

    def decode_latent(self, z):
        return self.decode(z.numpy())

    def host(self, x):
        return x.numpy()
