"""`avatarlab` command line. Each command lives in its own module, which exposes `register(subparsers)`;
heavy imports happen inside the command, so `avatarlab --help` stays instant."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

# module path for each command group; each module defines register(subparsers)
COMMANDS = [
    "avatar_service.server.cli",  # serve
    "avatar_service.render",  # render
    "avatar_service.data.cli",  # prepare
    "avatar_service.data.av_sync",  # sync-offsets
    "avatar_service.runtime.export_cli",  # export
    "avatar_service.bench",  # bench [fairness|speak|frame|train]
    "avatar_service.training.cli",  # train autoencoder|denoiser|sync
    "avatar_service.evaluation.evaluate",  # eval
    "avatar_service.evaluation.mouth_fill",  # fill-sheet
    "avatar_service.evaluation.audio_probe",  # probe-audio
    "avatar_service.evaluation.speak_sync",  # eval-speak
    "avatar_service.dub",  # dub
    "avatar_service.loadtest",  # loadtest
]


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avatarlab", description="Talking NPC faces from speech.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format=LOG_FORMAT)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (ValueError, FileNotFoundError) as e:  # user errors: one line, no traceback
        print(f"avatarlab {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
