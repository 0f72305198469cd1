"""`avatarlab bench frame`: where one frame's time goes on this machine, each stage of the engine's
batch timed separately."""
from __future__ import annotations

import pathlib
import time

import numpy as np


def add_arguments(ap) -> None:
    ap.add_argument("--backend", default="onnx")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=10)


def run(args) -> int:
    from PIL import Image

    from avatar_service.media import read_audio
    from avatar_service.model.features import clip_windows
    from avatar_service.runtime.avatar import lip_points
    from avatar_service.runtime.avatar_setup import prepare_avatar
    from avatar_service.runtime.models import load_backend
    from avatar_service.runtime.sampler import sample_latents

    assets = pathlib.Path(__file__).resolve().parents[1] / "assets"
    b = load_backend("default", args.backend)
    cfg = b.config
    img = np.asarray(Image.open(assets / "astronaut.png").convert("RGB"))
    state = prepare_avatar(b, [img], 256)
    audio = read_audio(assets / "demo_line.wav")
    n = args.batch
    windows = clip_windows(audio, n, 25.0, cfg.feature_extractor(), cfg.window)
    noise = np.random.default_rng(0).standard_normal((n, *cfg.latent_shape)).astype(np.float32)
    zm, zr = np.repeat(state.z_masked, n, 0), np.repeat(state.z_ref[None], n, 0)
    t = {"audio features (mel windows)": 0.0, "audio encoder": 0.0, f"denoiser x{args.steps} + scheduler": 0.0,
         "decoder": 0.0, "composite (warp + blend)": 0.0}
    for r in range(args.repeats + 2):
        t0 = time.perf_counter(); w = clip_windows(audio, n, 25.0, cfg.feature_extractor(), cfg.window); t1 = time.perf_counter()
        tok, off = b.audio(w); t2 = time.perf_counter()
        z0 = sample_latents(b, noise, zm, zr, tok, args.steps, 1.0, lip_points=lip_points(state.lip_anchor, off, b.lip_rest))
        t3 = time.perf_counter()
        reg = b.decode(z0); t4 = time.perf_counter()
        for k in range(n):
            state.composite(0, reg[k])
        t5 = time.perf_counter()
        if r >= 2:  # warm-up excluded
            for key, dt in zip(t, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
                t[key] += dt
    total = sum(t.values())
    print(f"{args.backend}, batch {n}, {args.steps} steps: {total / args.repeats / n * 1000:.1f} ms a frame")
    for key, v in t.items():
        print(f"  {key:32s} {v / args.repeats / n * 1000:6.2f} ms/frame  {100 * v / total:5.1f}%")
    return 0
