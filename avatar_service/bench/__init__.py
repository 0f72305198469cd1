"""`avatarlab bench`: every speed measurement, in one place.

    avatarlab bench [--backends ...]   the service end to end (service.py): frames/s, first frame, bytes
    avatarlab bench fairness           a paced session next to a bulk sender (fairness.py)
    avatarlab bench speak              Speak: time to first audio and first frame (speak.py)
    avatarlab bench motion             real-time motion-only streams held, audio -> motion latency (motion.py)
    avatarlab bench frame              where one frame's time goes, stage by stage (frame.py)
    avatarlab bench fill               a warp frame's cost with each inner-mouth fill (fill.py)
    avatarlab bench train              one training step of each stage (train.py)

`gpu.sh` beside this file runs the GPU set of them. Heavy imports happen inside each command."""
from __future__ import annotations

import importlib

SUBCOMMANDS = {
    "fairness": "a paced real-time session next to a bulk sender: frame rate kept",
    "speak": "Speak latency: first audio and first frame of a 20-word line",
    "motion": "real-time motion-only streams (visemes, blendshapes) one server holds, audio -> motion latency",
    "frame": "time of each stage of one engine batch",
    "fill": "a warp-renderer frame's cost with the plain and the diffusion inner-mouth fill",
    "train": "time one training step of each stage on random inputs",
}


def register(sub) -> None:
    from avatar_service.bench import service

    p = sub.add_parser("bench", help="measure speed (the service by default; subcommands for the rest)")
    service.add_arguments(p)
    p.set_defaults(func=service.run)
    kinds = p.add_subparsers(dest="bench", metavar="KIND", required=False)
    for name, help_ in SUBCOMMANDS.items():
        mod = importlib.import_module(f"avatar_service.bench.{name}")
        k = kinds.add_parser(name, help=help_, description=(mod.__doc__ or "").split("\n\n")[0])
        mod.add_arguments(k)
        k.set_defaults(func=mod.run)
