"""ONNX export of the four graphs the runtime calls: encoder, audio encoder, denoiser, decoder."""
from __future__ import annotations

import json
import warnings
import pathlib

import numpy as np
import torch
from torch import nn

from avatar_service.model import FaceGenerator
from avatar_service.model.generator import save_serving
from avatar_service.model.checkpoint import CONFIG_NAME, FORMAT_VERSION


class _Stage(nn.Module):
    """One stage of the generator as a module of its own (its weights registered), for tracing."""

    def __init__(self, generator: nn.Module, stage: str):
        super().__init__()
        self.generator, self.stage = generator, stage

    def forward(self, *args):
        out = getattr(self.generator, self.stage)(*args)
        return out[0] if isinstance(out, tuple) and out[1] is None else out  # a model without a lip map


def store_weights_fp16(path: pathlib.Path, min_elements: int = 1024) -> None:
    """Halve an ONNX file: large fp32 initializers are stored as fp16 and cast back to fp32 in the graph.
    onnxruntime folds the casts when the session loads, so inference stays fp32 at the same speed;
    only the weights are rounded (as in the fp16 safetensors the embedded model ships)."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    casts = []
    for init in graph.initializer:
        if init.data_type != onnx.TensorProto.FLOAT or np.prod(init.dims) < min_elements:
            continue
        w = numpy_helper.to_array(init)
        name = init.name
        init.CopyFrom(numpy_helper.from_array(w.astype(np.float16), name + "_fp16"))
        casts.append(helper.make_node("Cast", [name + "_fp16"], [name], to=onnx.TensorProto.FLOAT))
    for node in reversed(casts):
        graph.node.insert(0, node)
    onnx.save(model, str(path))


def export_fill_onnx(model, out_dir: str | pathlib.Path, opset: int = 17) -> pathlib.Path:
    """The inner-mouth fill's three graphs (model/mouth_fill.py): encoder, one denoiser step, decoder,
    weights stored fp16 (runtime/mouth_fill.py runs them with onnxruntime, 3-4x faster than torch here)."""
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    m = model.eval().float().cpu()
    c, lh, lw = m.config.networks.latent_shape
    px = m.config.crop.px
    z = torch.randn(1, c, lh, lw)
    graphs = {
        "encoder": ("encode", (torch.randn(1, 3, px, px),), ["crop"], ["z"]),
        "denoiser": ("predict", (z, torch.full((1,), 500, dtype=torch.long), z, z, torch.rand(1, 40, 2)),
                     ["x_t", "t", "z_warp", "z_ref", "lip_points"], ["v"]),
        "decoder": ("decode", (z,), ["z"], ["crop"]),
    }
    _export_graphs(m, graphs, out, opset, batch_axis=False, fp16_weights=True)
    return out


def _export_graphs(module: nn.Module, graphs: dict, out: pathlib.Path, opset: int, batch_axis: bool, fp16_weights: bool) -> None:
    """graphs: name -> (method of `module`, example args, input names, output names)."""
    for name, (stage, args, inputs, outputs) in graphs.items():
        # diffusers' shape checks trace as constants; at fixed region sizes that is exactly right
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            torch.onnx.export(_Stage(module, stage), args, str(out / f"{name}.onnx"), input_names=inputs,
                              output_names=outputs, opset_version=opset, dynamo=False,
                              dynamic_axes={n: {0: "batch"} for n in inputs + outputs} if batch_axis else None)
        if fp16_weights:
            store_weights_fp16(out / f"{name}.onnx")


def export_onnx(generator: FaceGenerator, out_dir: str | pathlib.Path, opset: int = 17,
                fp16_weights: bool = False) -> pathlib.Path:
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    g = generator.eval().float().cpu()
    cfg = g.config
    c, lh, lw = cfg.latent_shape
    h, w = cfg.layout.region_shape
    k, m = 2 * cfg.window.neighbour_radius + 1, 2 * cfg.window.mel_radius + 1
    b = 2
    z = torch.randn(b, c, lh, lw)
    tokens = torch.randn(b, g.audio_encoder.num_tokens, cfg.audio.token_dim)
    lip_map = cfg.denoiser.lip_map.enabled
    lip_args = ((g.lip_rest[None].expand(b, -1, -1).clone(),), ["lip_points"]) if lip_map else ((), [])
    graphs = {
        "encoder": ("encode", (torch.randn(b, 3, h, w),), ["region"], ["z"]),
        "audio_encoder": ("audio", (torch.randn(b, k, cfg.feature_dims, m),), ["windows"],
                          ["tokens", "lip_offsets"] if lip_map else ["tokens"]),
        "denoiser": ("denoise", (z, torch.full((b,), 500, dtype=torch.long), z, z, tokens, *lip_args[0]),
                     ["z_t", "t", "z_masked", "z_ref", "tokens", *lip_args[1]], ["prediction"]),
        "decoder": ("decode", (z,), ["z"], ["region"]),
    }
    _export_graphs(g, graphs, out, opset, batch_axis=True, fp16_weights=fp16_weights)
    np.save(out / "null_tokens.npy", g.null_tokens(1).detach().numpy())
    if lip_map:
        np.save(out / "lip_rest.npy", g.lip_rest.detach().numpy())
    meta = {"format_version": FORMAT_VERSION, "generator": cfg.architecture_dict()}
    (out / CONFIG_NAME).write_text(json.dumps(meta, indent=2, sort_keys=True))
    save_serving(out, cfg)
    return out
