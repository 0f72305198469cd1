"""`avatarlab export`: ONNX graphs of a model (runtime/export.py), checked against torch before they ship."""
from __future__ import annotations

import pathlib


def register(sub) -> None:
    p = sub.add_parser("export", help="write ONNX graphs of a model for the onnxruntime backend")
    p.add_argument("--model", default="default", help="'default', 'tiny' or a model folder")
    p.add_argument("--out", help="output folder (default: MODEL/onnx)")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--fp16-weights", action="store_true", help="store weights as fp16 (half the size; fp32 compute)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    import sys

    import numpy as np
    from tqdm import tqdm

    from avatar_service.runtime.backend import OnnxBackend, TorchBackend
    from avatar_service.runtime.export import export_onnx
    from avatar_service.runtime.models import EMBEDDED_MODEL, resolve_model


    gen, _ = resolve_model(args.model)
    out = pathlib.Path(args.out) if args.out else (EMBEDDED_MODEL if args.model == "default" else pathlib.Path(args.model)) / "onnx"
    with tqdm(total=2, desc="export", file=sys.stderr) as bar:
        export_onnx(gen, out, args.opset, args.fp16_weights)
        bar.update()
        # parity check on random inputs, so a broken export never ships silently
        tb, ob = TorchBackend(gen), OnnxBackend(out)
        c = gen.config
        z = np.random.default_rng(0).standard_normal((2, *c.latent_shape)).astype(np.float32)
        err = float(np.abs(tb.decode(z) - ob.decode(z)).max())
        bar.update()
    print(f"wrote {out} (decoder max |torch - onnx| = {err:.2e})", file=sys.stderr)
    return 0 if err < (2e-2 if args.fp16_weights else 1e-3) else 1
