"""`avatarlab bench fill`: what one warp-renderer frame costs with each inner-mouth fill, on the bundled
portrait with its mouth opened wider than its own (the only frames a fill runs on), and closed.

    avatarlab bench fill [--sizes 128,256,512] [--repeats 40] [--fill-model default]

Times WarpFace.render_delta (warp + interior + paste), one thread, in this process: the renderer's
share of a frame, without the audio encoder or frame encoding (`avatarlab bench` has those).
"""
from __future__ import annotations

import json
import pathlib
import time

import numpy as np


def add_arguments(p) -> None:
    p.add_argument("--sizes", default="128,256,512", help="face texture sizes in pixels")
    p.add_argument("--repeats", type=int, default=40)
    p.add_argument("--fill-model", default="default", help="the diffusion fill's model folder (default: the embedded one)")
    p.add_argument("--json", help="write results here")


def run(args) -> int:
    import cv2
    import torch

    from avatar_service.face.warp import MOUTH_FILLS, WarpConfig
    from avatar_service.runtime.warp_renderer import EMBEDDED_MOTION, MotionModel, WarpFace, measure_mesh

    torch.set_num_threads(1)
    img = cv2.imread(str(EMBEDDED_MOTION.parent / "astronaut.png"))[..., ::-1]
    basis = MotionModel.default().basis
    rows = []
    print(f"{'size':>5} {'fill':10} {'open ms':>8} {'closed ms':>9}")
    for size in map(int, args.sizes.split(",")):
        tex = np.ascontiguousarray(cv2.resize(img[10:202, 90:282], (size, size), interpolation=cv2.INTER_AREA))
        mesh = measure_mesh(tex)
        for fill in MOUTH_FILLS:
            face = WarpFace(tex, mesh, basis, WarpConfig(mouth_fill=fill, fill_model=args.fill_model))
            cases = {"open": face.closed + basis.open_direction * 0.3 - face.coeffs, "closed": face.closed - face.coeffs}
            ms = {}
            for name, delta in cases.items():
                face.render_delta(delta)  # warm-up
                t0 = time.perf_counter()
                for _ in range(args.repeats):
                    face.render_delta(delta)
                ms[name] = (time.perf_counter() - t0) / args.repeats * 1000
            rows.append({"size": size, "mouth_fill": fill, "open_ms": round(ms["open"], 2), "closed_ms": round(ms["closed"], 2)})
            print(f"{size:5d} {fill:10} {ms['open']:8.1f} {ms['closed']:9.1f}", flush=True)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({"runs": rows}, indent=2))
    return 0
