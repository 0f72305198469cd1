"""Time one training step (forward, backward, optimizer) of each stage on random inputs, so long runs
can be planned on any machine without a dataset:

    avatarlab bench train --device cuda --bf16 [--config tiny] [--steps 20]
"""
from __future__ import annotations

import argparse
import json
import time


def _params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters() if p.requires_grad)


def _time(objective: torch.nn.Module, make_batch, steps: int, rt) -> float:
    import torch

    opt = torch.optim.AdamW([p for p in objective.parameters() if p.requires_grad], lr=1e-5)
    for i in range(steps + 3):  # 3 warm-up steps
        if i == 3:
            if rt.device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        batch = make_batch()
        with rt.autocast():
            loss = objective(**batch)[0]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if rt.device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps


def add_arguments(ap) -> None:
    ap.add_argument("--config", choices=["default", "tiny"], default="default")
    ap.add_argument("--device", choices=["cpu", "cuda"])
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch-size", type=int, help="one size for all stages (default: each stage's default)")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="avatarlab bench train")
    add_arguments(ap)
    return measure(ap.parse_args(argv))


def run(args) -> int:
    measure(args)
    return 0


def measure(args) -> dict:
    import torch

    from avatar_service.model import FaceGenerator, GeneratorConfig
    from avatar_service.training.autoencoder import AutoencoderObjective
    from avatar_service.training.config import DEFAULTS
    from avatar_service.training.denoiser import DenoiserObjective
    from avatar_service.training.runtime import setup_runtime
    from avatar_service.model.sync import SyncConfig, SyncExpert
    from avatar_service.training.sync import SyncObjective

    rt = setup_runtime(args.device, args.bf16)
    dev = rt.device
    cfg = GeneratorConfig.tiny() if args.config == "tiny" else GeneratorConfig()
    scfg = SyncConfig.tiny() if args.config == "tiny" else SyncConfig()
    g = FaceGenerator(cfg).to(dev)
    h, w = cfg.layout.region_shape
    c, lh, lw = cfg.latent_shape
    k, m = 2 * cfg.window.neighbour_radius + 1, 2 * cfg.window.mel_radius + 1
    bs = {s: args.batch_size or DEFAULTS[s].batch_size for s in DEFAULTS}
    out = {"device": str(torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"),
           "threads": torch.get_num_threads(), "bf16": args.bf16, "config": args.config}

    tc = DEFAULTS["autoencoder"]
    ae = AutoencoderObjective(g.autoencoder, tc, torch.from_numpy(cfg.layout.region_mask(soft=True))).to(dev)
    b = bs["autoencoder"]
    out["autoencoder"] = {"batch": b, "params": _params(ae), "s_per_step": _time(ae, lambda: {"x": torch.rand(b, 3, h, w, device=dev) * 2 - 1},
                                                            args.steps, rt)}

    g.autoencoder.requires_grad_(False)
    dn = DenoiserObjective(g, torch.ones(1, 1, lh, lw), DEFAULTS["denoiser"]).to(dev)
    b = bs["denoiser"]

    def dn_batch():
        z = lambda: torch.randn(b, c, lh, lw, device=dev)  # noqa: E731
        return {"z0": z(), "z_masked": z(), "z_ref": z(), "noise": z(),
                "windows": torch.randn(b, k, cfg.feature_dims, m, device=dev),
                "t": torch.randint(0, 1000, (b,), device=dev), "drop": torch.rand(b, device=dev) < 0.1,
                "lips": torch.randn(b, cfg.audio.lip_components, device=dev)}
    out["denoiser"] = {"batch": b, "params": _params(dn), "s_per_step": _time(dn, dn_batch, args.steps, rt)}

    sy = SyncObjective(SyncExpert(scfg).to(dev))
    b = bs["sync"]
    out["sync"] = {"batch": b, "params": _params(sy), "s_per_step": _time(sy, lambda: {
        "lips": torch.randn(b, scfg.frames, 2 * scfg.lip_points, device=dev),
        "mel": torch.randn(b, scfg.mel.n_mels, scfg.mel_frames, device=dev),
        "shifted_mel": torch.randn(b, scfg.mel.n_mels, scfg.mel_frames, device=dev)}, args.steps, rt)}
    print(json.dumps(out, indent=2))
    return out

