"""`avatarlab bench` (no subcommand): frames per second, real-time factor, first-frame latency and bytes
per frame, for each backend, face size, step count and number of concurrent streams, through the real service."""
from __future__ import annotations

import json
import math
import pathlib
import sys
import tempfile
import threading
import time

import numpy as np


def add_arguments(p) -> None:
    p.add_argument("--json", help="write results here")
    p.add_argument("--model", default="default")
    p.add_argument("--renderers", default="warp,diffusion", help="warp (default renderer) and/or diffusion")
    p.add_argument("--backends", default="torch,onnx", help="the diffusion renderer's backends")
    p.add_argument("--sizes", default="128,256", help="output sizes in pixels")
    p.add_argument("--steps", default="1,2,4")
    p.add_argument("--streams", default="1,2,4,8")
    p.add_argument("--seconds", type=float, default=4.0, help="audio per stream")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    from avatar_service.face.warp import add_mouth_fill_argument

    add_mouth_fill_argument(p)


def _stream(target: str, avatar_id: str, audio: np.ndarray, size: int, steps: int, out: list, first_chunk_s: float = 0.2):
    """One session: the first 200 ms of audio, then the rest as fast as the server takes it."""
    from avatar_service.api import pb, pb_grpc
    from avatar_service.responses import items
    import grpc

    stub = pb_grpc.AvatarServiceStub(grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", 64 << 20)]))
    pcm = (audio * 32767).astype("<i2").tobytes()
    split = int(first_chunk_s * 16000) * 2
    t = {}

    def reqs():
        yield pb.AnimateRequest(config=pb.AnimateConfig(
            avatar_id=avatar_id, audio_format=pb.AudioFormat(encoding=1, sample_rate_hz=16000, channels=1),
            video=pb.VideoOptions(fps=25, width_px=size, height_px=size, pixel_format=pb.PIXEL_FORMAT_RGB8,
                                  frame_mode=pb.FRAME_MODE_DELTA),
            generation=pb.GenerationOptions(seed=1, sampler_steps=steps)))
        t["first_audio"] = time.perf_counter()
        yield pb.AnimateRequest(audio=pb.AudioChunk(data=pcm[:split]))
        for i in range(split, len(pcm), 6400):
            yield pb.AnimateRequest(audio=pb.AudioChunk(data=pcm[i:i + 6400]))
        yield pb.AnimateRequest(end_of_audio=pb.EndOfAudio())

    frames, first, delta_bytes = 0, None, 0
    for kind, frame in items(stub.Animate(reqs())):
        if kind == "frame":
            frames += 1
            delta_bytes += len(frame.pixels)
            if first is None:
                first = time.perf_counter()
    end = time.perf_counter()
    out.append(dict(frames=frames, first_frame_ms=(first - t["first_audio"]) * 1000,
                    wall_s=end - t["first_audio"], delta_bytes=delta_bytes / max(1, frames)))


def bench_config(srv, avatar_id, audio, backend, size, steps, streams, renderer="diffusion"):
    results: list = []
    threads = [threading.Thread(target=_stream, args=(srv.target, avatar_id, audio, size, steps, results))
               for _ in range(streams)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    dur = len(audio) / 16000
    wall = max(r["wall_s"] for r in results)
    fps = float(np.mean([r["frames"] / r["wall_s"] for r in results]))
    return dict(renderer=renderer, backend=backend, size=size, steps=steps, streams=streams, fps_per_stream=round(fps, 2),
                total_fps=round(sum(r["frames"] for r in results) / wall, 2),
                first_frame_ms=round(float(np.median([r["first_frame_ms"] for r in results])), 1),
                rtf=round(wall / dur, 3), realtime=bool(fps >= 25),
                bytes_per_frame_full=size * size * 3, bytes_per_frame_delta=round(float(np.mean([r["delta_bytes"] for r in results]))))


def run(args) -> int:
    from avatar_service.api import pb
    from avatar_service.media import read_audio
    from avatar_service.server.inprocess import InProcessServer
    from avatar_service.server.settings import ServerSettings

    assets = pathlib.Path(__file__).parents[1] / "assets"
    speech = read_audio(assets / "demo_line.wav")
    reps = math.ceil(args.seconds * 16000 / len(speech))
    audio = np.tile(speech, reps)[: int(args.seconds * 16000)]
    portrait = (assets / "astronaut.png").read_bytes()
    rows = []
    header = (f"{'renderer':9} {'backend':8} {'size':>5} {'steps':>5} {'streams':>7} {'fps/stream':>10} {'total fps':>9} "
              f"{'first ms':>8} {'rtf':>6} {'delta B':>8} {'full B':>8}")
    print(header)
    for renderer in args.renderers.split(","):
        # the warp renderer runs no generator network: one pass, whatever the backend and step count
        backends = args.backends.split(",") if renderer == "diffusion" else ["-"]
        for backend in backends:
            for size in map(int, args.sizes.split(",")):
                with tempfile.TemporaryDirectory() as store:
                    settings = ServerSettings(listen="127.0.0.1:0", model=args.model, device=args.device,
                                              backend=backend if renderer == "diffusion" else "torch",
                                              dtype=args.dtype if backend == "torch" else "float32",
                                              store_dir=store, face_px=size, renderer=renderer,
                                              mouth_fill=args.mouth_fill)
                    with InProcessServer(settings) as srv:
                        avatar = srv.stub().CreateAvatar(pb.CreateAvatarRequest(portrait_image=portrait)).avatar_id
                        _stream(srv.target, avatar, audio[:16000], size, 1, [])  # warm-up
                        for steps in (map(int, args.steps.split(",")) if renderer == "diffusion" else [0]):
                            for n in map(int, args.streams.split(",")):
                                r = bench_config(srv, avatar, audio, backend, size, steps, n, renderer)
                                r["model"] = srv.app.avatars.model_id if renderer == "diffusion" else "warp"
                                r["mouth_fill"] = args.mouth_fill
                                rows.append(r)
                                print(f"{renderer:9} {backend:8} {size:5d} {steps:5d} {n:7d} {r['fps_per_stream']:10.1f} "
                                      f"{r['total_fps']:9.1f} {r['first_frame_ms']:8.0f} {r['rtf']:6.2f} "
                                      f"{r['bytes_per_frame_delta']:8d} {r['bytes_per_frame_full']:8d}", flush=True)
    if args.json:
        pathlib.Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(args.json).write_text(json.dumps({"runs": rows, "device": args.device}, indent=2))
        print(f"wrote {args.json}", file=sys.stderr)
    return 0
