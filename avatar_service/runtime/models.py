"""Where served models come from (the embedded default, a tiny random model for tests, or a folder),
and the backend that runs one."""
from __future__ import annotations

import hashlib
import pathlib
import tempfile

import torch

from avatar_service.model import FaceGenerator, GeneratorConfig
from avatar_service.runtime.backend import Backend, OnnxBackend, TorchBackend

EMBEDDED_MODEL = pathlib.Path(__file__).resolve().parents[1] / "assets" / "model"


def resolve_model(model: str, need_onnx: bool = False) -> tuple[FaceGenerator, pathlib.Path | None]:
    if model == "tiny":
        gen = FaceGenerator.random(GeneratorConfig.tiny(), seed=0)
        onnx_dir = None
        if need_onnx:
            from avatar_service.runtime.export import export_onnx

            onnx_dir = pathlib.Path(tempfile.gettempdir()) / "avatarlab-tiny-onnx"
            export_onnx(gen, onnx_dir)
        return gen, onnx_dir
    path = EMBEDDED_MODEL if model == "default" else pathlib.Path(model)
    if not (path / "config.json").exists():
        if model == "default":
            raise FileNotFoundError(f"the embedded default model is missing from {path}; "
                                    "pass --model tiny or --model PATH to a trained model folder")
        raise FileNotFoundError(f"{path} is not a model folder (no config.json); train one with `avatarlab train`")
    gen = FaceGenerator.from_pretrained(path)
    onnx_dir = path / "onnx"
    if need_onnx and not (onnx_dir / "denoiser.onnx").exists():
        raise FileNotFoundError(f"{onnx_dir} has no ONNX graphs: run `avatarlab export --model {path} --out {onnx_dir}`")
    return gen, onnx_dir


def model_id(gen_or_cfg) -> str:
    cfg = gen_or_cfg.config if hasattr(gen_or_cfg, "config") else gen_or_cfg
    digest = hashlib.sha1(cfg.to_json().encode()).hexdigest()[:8]
    return f"{cfg.name}@{digest}"


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def load_backend(model: str, backend: str = "torch", device: str = "cpu", dtype: str = "float32") -> Backend:
    """`model` is 'tiny' (random weights, for tests), 'default' (the embedded model) or a model folder.
    `dtype` applies to the torch backend: bfloat16/float16 halve GPU memory and raise throughput there."""
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}: use one of {sorted(DTYPES)}")
    generator, onnx_dir = resolve_model(model, need_onnx=(backend == "onnx"))
    if backend == "torch":
        return TorchBackend(generator, device, DTYPES[dtype])
    if backend == "onnx":
        return OnnxBackend(onnx_dir, device)
    raise ValueError(f"unknown backend {backend!r}: use 'torch' or 'onnx'")
