"""`avatarlab bench speak`: Speak latency, time to first audio and first frame for a 20-word line.

    avatarlab bench speak [--server HOST:PORT] [--model tiny] [--voice ID] [--repeats 3]

Without --server it starts an in-process server (model `tiny` unless told otherwise), so the numbers
include real gRPC over loopback but a random tiny face model; pass a real server for product numbers.
"""
from __future__ import annotations

import contextlib
import json
import pathlib
import statistics
import time

from avatar_service.api import pb
from avatar_service.client import AvatarLabClient
from avatar_service.responses import items
from avatar_service.speech.client import speak_stream

LINE_20_WORDS = ("Welcome back, traveller. The northern road is closed tonight, "
                 "so rest here and leave at first light before the storm.")


def measure_first_latency(client: AvatarLabClient, avatar_id: str, text: str = LINE_20_WORDS, voice_id: str = "",
                          video: pb.VideoOptions | None = None,
                          generation: pb.GenerationOptions | None = None) -> dict[str, float]:
    """One Speak call, timed at the client from the request: ms to SpeechStarted, to the first audio
    chunk and to the first frame, and to the end; plus the line's audio seconds and frame count."""
    t0 = time.perf_counter()
    marks: dict[str, float] = {}
    audio_bytes, rate, frames = 0, 0, 0
    for kind, value in items(speak_stream(client, avatar_id, text, voice_id, video or pb.VideoOptions(fps=25),
                                          generation)):
        marks.setdefault(kind, (time.perf_counter() - t0) * 1000)
        if kind == "started":
            rate = value.audio_sample_rate_hz
        elif kind == "audio":
            audio_bytes += len(value.pcm_s16le)
        elif kind == "frame":
            frames += 1
    return {"words": len(text.split()), "started_ms": marks.get("started", float("nan")),
            "first_audio_ms": marks.get("audio", float("nan")), "first_frame_ms": marks.get("frame", float("nan")),
            "total_ms": marks.get("ended", float("nan")), "audio_s": audio_bytes / 2 / max(rate, 1), "frames": frames}


def add_arguments(ap) -> None:
    ap.add_argument("--server", help="HOST:PORT; default an in-process server")
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--voice", default="")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", help="also write the runs here")


def run(args) -> int:

    from avatar_service.render import in_process_server

    image = pathlib.Path(__file__).resolve().parents[1] / "assets" / "astronaut.png"
    ctx = contextlib.nullcontext(args.server) if args.server else in_process_server(args.model, "torch")
    with ctx as target, AvatarLabClient(target) as client:
        client.wait_ready()
        avatar = client.create_avatar(image=image)
        video = pb.VideoOptions(fps=25, width_px=args.size, height_px=args.size, pixel_format=pb.PIXEL_FORMAT_RGB8,
                                frame_mode=pb.FRAME_MODE_DELTA)
        gen = pb.GenerationOptions(seed=0, sampler_steps=args.steps)
        runs = [measure_first_latency(client, avatar.avatar_id, voice_id=args.voice, video=video, generation=gen)
                for _ in range(args.repeats)]
    for r in runs:
        print(json.dumps({k: round(v, 1) if isinstance(v, float) else v for k, v in r.items()}))
    med = {k: statistics.median(r[k] for r in runs) for k in ("first_audio_ms", "first_frame_ms", "total_ms", "audio_s")}
    print(f"median of {len(runs)}: first audio {med['first_audio_ms']:.0f} ms, first frame {med['first_frame_ms']:.0f} ms, "
          f"whole line {med['total_ms']:.0f} ms for {med['audio_s']:.2f} s of speech")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(runs, indent=1))
    return 0

