"""`avatarlab train autoencoder|denoiser|sync`: one command per stage, same flags, any device count.

    avatarlab train autoencoder --data DATASET --out runs/ae --faces auto
    avatarlab train denoiser --data DATASET --init runs/ae/model --out runs/dn --device cuda --bf16
    torchrun --nproc_per_node 8 -m avatar_service.training train denoiser ...   (DDP)
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import pathlib

log = logging.getLogger(__name__)

STAGES = ("autoencoder", "denoiser", "sync")


def default_faces_dir() -> pathlib.Path:
    repo = pathlib.Path(__file__).resolve().parents[2]
    return pathlib.Path(os.environ.get("AVATARLAB_DATA", repo.parent / "shared" / "data")) / "faces" / "without_mask"


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train the generator (autoencoder, denoiser) or the lip-sync expert")
    stages = p.add_subparsers(dest="stage", required=True, metavar="STAGE")
    for name, help_ in [("autoencoder", "stage 1: the image autoencoder on mouth regions"),
                        ("denoiser", "stage 2: audio encoder + latent denoiser (autoencoder frozen, needs --init)"),
                        ("sync", "SyncNet-style lip-sync expert for LSE-D/C evaluation"),
                        ("mouth-fill", "the warp renderer's inner-mouth latent denoiser (the generator's autoencoder, frozen)")]:
        s = stages.add_parser(name, help=help_)
        s.add_argument("--data", required=True, help="dataset folder with manifest.json")
        s.add_argument("--out", required=True, help="run folder: checkpoints/, samples/, tensorboard/, model/")
        s.add_argument("--config", default="default",
                       help="architecture: default, tiny or a JSON file (ignored with --resume; for the denoiser, a JSON grows the --init model's, e.g. to add a lip map)")
        s.add_argument("--steps", type=int, help="total optimizer steps")
        s.add_argument("--batch-size", type=int, help="per process")
        s.add_argument("--lr", type=float)
        s.add_argument("--warmup-steps", type=int, help="linear learning-rate warm-up")
        s.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
        s.add_argument("--init", help="start from a saved model folder")
        s.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda when available")
        s.add_argument("--bf16", action="store_true", help="bf16 autocast (CUDA)")
        s.add_argument("--sample-every", type=int, help="steps between sample grids")
        s.add_argument("--ckpt-every", type=int, help="steps between checkpoints")
        s.add_argument("--log-every", type=int)
        s.add_argument("--seed", type=int)
        if name in ("autoencoder", "denoiser"):
            faces = "auto" if name == "autoencoder" else "none"  # the shipped denoiser trained on clips alone
            s.add_argument("--faces", default=faces,
                           help="folder of still face photos mixed in as extra people; 'auto' = $AVATARLAB_DATA/faces/without_mask "
                                f"if present; 'none' (default: {faces})")
            s.add_argument("--faces-fraction", type=float, metavar="F", help="share of each batch drawn from --faces (default 0.3)")
        if name == "mouth-fill":
            s.add_argument("--generator", default="default",
                           help="model folder whose trained autoencoder the fill reuses (default: the embedded generator)")
        if name == "denoiser":
            s.add_argument("--shape-aug", type=float, metavar="F",
                           help="stretch half of each batch about the mouth by up to F (e.g. 0.15; default 0 = off)")
            s.add_argument("--ref-shift", type=float, metavar="PX",
                           help="move each reference by up to PX pixels before encoding, so the mouth's place comes from the pose (default 0 = off)")
        s.set_defaults(func=run)
    from avatar_service.training import motion, motion_student, rig

    motion.register(stages)  # closed-form: none of the optimiser flags above apply
    motion_student.register(stages)
    rig.register(stages)


def _generator_config(spec: str):
    from avatar_service.model import GeneratorConfig

    if spec == "default":
        return GeneratorConfig()
    if spec == "tiny":
        return GeneratorConfig.tiny()
    d = json.loads(pathlib.Path(spec).read_text())
    serving = pathlib.Path(spec).with_name("serving.json")  # a saved model's config.json works too, with
    return GeneratorConfig.from_dict(d.get("generator", d),  # the serving settings saved beside it
                                     json.loads(serving.read_text()) if "generator" in d and serving.exists() else None)


def _faces(spec: str) -> str | None:
    """--faces: 'auto' (the shared data's photos, when present), 'none' or a folder."""
    if spec == "auto":
        return str(default_faces_dir()) if default_faces_dir().is_dir() else None
    return None if spec == "none" else spec


def _sync_config(spec: str):
    from avatar_service.model.sync import SyncConfig

    if spec == "default":
        return SyncConfig()
    if spec == "tiny":
        return SyncConfig.tiny()
    d = json.loads(pathlib.Path(spec).read_text())
    return SyncConfig.from_dict(d.get("sync", d))


def run(args: argparse.Namespace) -> int:
    import torch

    from avatar_service.training.config import DEFAULTS
    from avatar_service.training.loop import train
    from avatar_service.training.runtime import Checkpoints, setup_runtime

    if args.config not in ("default", "tiny") and not pathlib.Path(args.config).is_file():
        raise FileNotFoundError(f"--config {args.config}: not default, tiny or an existing JSON file")
    run_dir = pathlib.Path(args.out)
    tc = DEFAULTS[args.stage].replace(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed, warmup_steps=args.warmup_steps,
                                      sample_every=args.sample_every, ckpt_every=args.ckpt_every,
                                      log_every=args.log_every, bf16=args.bf16 or None,
                                      shape_aug=getattr(args, "shape_aug", None), ref_shift=getattr(args, "ref_shift", None),
                                      faces_fraction=getattr(args, "faces_fraction", None))
    rt = setup_runtime(args.device, tc.bf16)
    try:
        state = None
        if args.resume:
            latest = Checkpoints(run_dir).latest()
            if latest is None:
                log.warning("--resume: no checkpoint in %s yet, starting fresh", run_dir / "checkpoints")
            else:
                state = Checkpoints(run_dir).load(latest)
                log.info("resuming from %s (step %d)", latest, state["step"])
        if rt.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            tc.save(run_dir / f"train_{args.stage}.json")
        rt.barrier()
        torch.manual_seed(tc.seed)  # identical initial weights in every process
        stage_state = None if state is None else state["stage"]
        if args.stage == "autoencoder":
            from avatar_service.training.autoencoder import AutoencoderStage

            stage = AutoencoderStage(rt, tc, run_dir, args.data, _generator_config(args.config), args.init,
                                     _faces(args.faces), stage_state)
        elif args.stage == "denoiser":
            from avatar_service.training.denoiser import DenoiserStage

            # The architecture comes from --init (or the checkpoint); --config grows it for a fine-tune
            config = None if args.config == "default" or stage_state is not None else _generator_config(args.config)
            stage = DenoiserStage(rt, tc, run_dir, args.data, args.init, stage_state, config, _faces(args.faces))
        elif args.stage == "mouth-fill":
            from avatar_service.model.mouth_fill import MouthFillConfig
            from avatar_service.training.mouth_fill import MouthFillStage

            if args.init:
                raise ValueError("--init does not apply to mouth-fill: --generator names the model whose autoencoder it reuses")
            fill_config = MouthFillConfig.tiny() if args.config == "tiny" else MouthFillConfig()
            stage = MouthFillStage(rt, tc, run_dir, args.data, args.generator, fill_config, stage_state)
        else:
            from avatar_service.training.sync import SyncStage

            stage = SyncStage(rt, tc, run_dir, args.data, _sync_config(args.config), args.init, stage_state)
        out = train(stage, rt, tc, run_dir, state)
        if out is not None:
            print(f"saved {out}")
        return 0
    finally:
        rt.close()


def main(argv: list[str] | None = None) -> int:
    """The training commands alone (python -m avatar_service.training), e.g. under torchrun."""
    parser = argparse.ArgumentParser(prog="avatarlab")
    parser.add_argument("-v", "--verbose", action="store_true")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args.func(args) or 0)
