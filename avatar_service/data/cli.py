"""`avatarlab prepare`: build a training dataset from talking-face videos."""
from __future__ import annotations

import argparse
import time


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "prepare", help="turn talking-face videos into a dataset of aligned crops, audio, mel and lip landmarks",
        description="Videos (mp4 mov mkv webm mpg avi) or folders of them; a video without audio uses the "
                    "same-named .wav beside it. Identities come from a manifest.tsv in the folder "
                    "(columns file, identity), else the file name. Bad files are skipped and listed.")
    p.add_argument("sources", nargs="+", metavar="SRC", help="video files or folders")
    p.add_argument("--out", required=True, metavar="DATASET", help="output folder (manifest.json, clips/)")
    p.add_argument("--crop-px", type=int, default=128, help="side of the aligned face crop (default 128)")
    p.add_argument("--val-fraction", type=float, default=0.15, help="share of identities for validation")
    p.add_argument("--workers", type=int, default=1, help="parallel processes (one per core at most)")
    p.add_argument("--max-seconds-per-clip", type=float, default=None, metavar="N", help="cut clips to N seconds")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from avatar_service.data.prepare import PrepareConfig, prepare_dataset

    if args.crop_px < 32 or args.crop_px % 8:
        raise ValueError(f"--crop-px {args.crop_px}: use a multiple of 8, at least 32")
    if not 0.0 <= args.val_fraction < 1.0:
        raise ValueError(f"--val-fraction {args.val_fraction}: must be in [0, 1)")
    if args.workers < 1:
        raise ValueError(f"--workers {args.workers}: must be at least 1")
    cfg = PrepareConfig(crop_px=args.crop_px, val_fraction=args.val_fraction, max_seconds=args.max_seconds_per_clip)
    t0 = time.time()
    m = prepare_dataset(args.sources, args.out, cfg, workers=args.workers)
    frames = sum(c["frames"] for c in m["clips"])
    val = sorted({c["identity"] for c in m["clips"] if c["split"] == "val"})
    print(f"{args.out}: {len(m['clips'])} clips, {frames} frames ({frames / m['fps']:.0f} s), "
          f"{len(m['skipped'])} skipped, val identities {val}, {time.time() - t0:.0f} s")
    return 0 if m["clips"] else 1


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (`python -m avatar_service.data.cli prepare ...`), same as `avatarlab prepare`."""
    import logging
    import sys

    parser = argparse.ArgumentParser(prog="avatarlab")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return run(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"avatarlab prepare: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
