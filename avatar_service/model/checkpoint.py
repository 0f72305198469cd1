"""One folder format for every trained module (diffusers' save_pretrained style): `config.json` holds the
format version and the frozen config under the module's key, `model.safetensors` all its weights."""
from __future__ import annotations

import json
import os
import pathlib
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT_VERSION = 1


def save_module(module: nn.Module, path: str | os.PathLike, key: str, config: dict[str, Any], name: str,
                dtype: torch.dtype | None = None) -> pathlib.Path:
    """`dtype=torch.float16` halves the file; loading casts back into the module's own (fp32) tensors."""
    path = pathlib.Path(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / CONFIG_NAME).write_text(json.dumps({"format_version": FORMAT_VERSION, key: config}, indent=2, sort_keys=True))
    state = {k: v.detach().to(dtype if dtype and v.is_floating_point() else v.dtype).contiguous().cpu()
             for k, v in module.state_dict().items()}
    save_file(state, str(path / WEIGHTS_NAME), metadata={"format": "pt", "name": name})
    return path


def load_config(path: str | os.PathLike, key: str, what: str) -> dict[str, Any]:
    """The config saved under `key`; clear errors for a wrong folder or another format."""
    path = pathlib.Path(path)
    if not (path / CONFIG_NAME).exists():
        raise FileNotFoundError(f"{path} is not a saved {what}: {CONFIG_NAME} is missing")
    meta = json.loads((path / CONFIG_NAME).read_text())
    if meta.get("format_version") != FORMAT_VERSION or key not in meta:
        raise ValueError(f"{path}: not a {what} of format {FORMAT_VERSION} "
                         f"(found format {meta.get('format_version')}, keys {sorted(meta)})")
    return meta[key]


def load_weights(module: nn.Module, path: str | os.PathLike, device: str = "cpu") -> nn.Module:
    module.load_state_dict(load_file(str(pathlib.Path(path) / WEIGHTS_NAME), device=device), strict=True)
    return module.to(device).eval()
