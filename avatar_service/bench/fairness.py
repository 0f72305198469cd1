"""`avatarlab bench fairness`: does a bulk sender starve a paced real-time session?

A paced session streams its audio in 40 ms chunks at real time, first alone, then next to a bulk
session that sends a long clip (30 s by default) at once and reads frames as fast as they come. The
paced session's received frame rate next to the bulk sender should stay >= 90% of its rate alone:
the engine (and Whisper's encoder) take work earliest deadline first (avatar_service/batching.py).
`--order fifo` runs the same with work taken in submission order instead, for comparison.
"""
from __future__ import annotations

import json
import pathlib
import threading
import time

import numpy as np

FPS = 25


def add_arguments(p) -> None:
    p.add_argument("--model", default="default")
    p.add_argument("--renderer", default="warp", choices=["warp", "diffusion"])
    p.add_argument("--backend", default="onnx", help="the diffusion renderer's backend")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--seconds", type=float, default=6.0, help="audio of the paced session")
    p.add_argument("--bulk-seconds", type=float, default=30.0, help="audio the bulk session sends at once")
    p.add_argument("--order", choices=["deadline", "fifo"], default="deadline", help="how the engine takes work")
    p.add_argument("--json", help="also write the numbers here")


def _session(target: str, avatar_id: str, audio: np.ndarray, size: int, steps: int, paced: bool, out: dict,
             stop: threading.Event | None = None) -> None:
    import grpc

    from avatar_service.api import pb, pb_grpc
    from avatar_service.responses import items

    stub = pb_grpc.AvatarServiceStub(grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", 64 << 20)]))
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    chunk = 640 * 2  # 40 ms at 16 kHz
    t0 = {}

    def reqs():
        yield pb.AnimateRequest(config=pb.AnimateConfig(
            avatar_id=avatar_id, audio_format=pb.AudioFormat(encoding=pb.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=16000),
            video=pb.VideoOptions(fps=FPS, width_px=size, height_px=size, pixel_format=pb.PIXEL_FORMAT_RGB8,
                                  frame_mode=pb.FRAME_MODE_DELTA),
            generation=pb.GenerationOptions(seed=1, sampler_steps=steps)))
        t0["start"] = time.perf_counter()
        if not paced:
            yield pb.AnimateRequest(audio=pb.AudioChunk(data=pcm))
        else:
            for k, i in enumerate(range(0, len(pcm), chunk)):
                time.sleep(max(0.0, t0["start"] + k * 0.04 - time.perf_counter()))
                yield pb.AnimateRequest(audio=pb.AudioChunk(data=pcm[i:i + chunk]))
        yield pb.AnimateRequest(end_of_audio=pb.EndOfAudio())

    arrivals = []
    call = stub.Animate(reqs())
    for kind, _ in items(call):
        if kind == "frame":
            arrivals.append(time.perf_counter())
            if stop is not None and stop.is_set():
                call.cancel()
                break
    a = np.array(arrivals) - t0["start"]
    # a frame is due once its audio has been sent: its end time (paced) or at once (bulk)
    due = (np.arange(len(a)) + 1) / FPS if paced else np.zeros(len(a))
    out.update(frames=len(a), fps=(len(a) - 1) / (a[-1] - a[0]) if len(a) > 1 else 0.0,
               wall_s=float(a[-1]) if len(a) else 0.0,
               latency_ms_p50=float(np.percentile(a - due, 50) * 1000) if len(a) else 0.0,
               latency_ms_p95=float(np.percentile(a - due, 95) * 1000) if len(a) else 0.0)


def run(args) -> int:
    from avatar_service.api import pb
    from avatar_service.media import read_audio
    from avatar_service.server.inprocess import InProcessServer
    from avatar_service.server.settings import ServerSettings

    assets = pathlib.Path(__file__).resolve().parents[1] / "assets"
    speech = read_audio(assets / "demo_line.wav")

    def clip(seconds):
        return np.tile(speech, int(np.ceil(seconds * 16000 / len(speech))))[: int(seconds * 16000)]

    import tempfile
    with tempfile.TemporaryDirectory() as store:
        settings = ServerSettings(listen="127.0.0.1:0", model=args.model, backend=args.backend, store_dir=store,
                                  face_px=args.size, renderer=args.renderer)
        with InProcessServer(settings) as srv:
            if args.order == "fifo":  # submission order: what the engine did before deadlines
                srv.app.engine._batcher._deadline = lambda job: job.submitted
            avatar = srv.stub().CreateAvatar(pb.CreateAvatarRequest(portrait_image=(assets / "astronaut.png").read_bytes())).avatar_id
            _session(srv.target, avatar, clip(1.0), args.size, args.steps, False, {})  # warm-up
            alone: dict = {}
            _session(srv.target, avatar, clip(args.seconds), args.size, args.steps, True, alone)
            bulk: dict = {}
            paced: dict = {}
            stop = threading.Event()
            bulk_thread = threading.Thread(target=_session, args=(srv.target, avatar, clip(args.bulk_seconds), args.size,
                                                                   args.steps, False, bulk, stop))
            bulk_thread.start()
            time.sleep(0.5)  # the bulk clip is in and queued
            _session(srv.target, avatar, clip(args.seconds), args.size, args.steps, True, paced)
            bulk_done_during = bulk.get("frames") is not None
            stop.set()
            bulk_thread.join()
    kept = paced["fps"] / alone["fps"] if alone["fps"] else 0.0
    result = {"order": args.order, "backend": args.backend, "size": args.size, "steps": args.steps,
              "paced_alone": alone, "paced_next_to_bulk": paced, "bulk": bulk, "kept_fraction": round(kept, 3),
              "bulk_finished_before_paced": bulk_done_during}
    print(f"order {args.order}: paced session alone {alone['fps']:.1f} frames/s (latency p50 {alone['latency_ms_p50']:.0f} ms, "
          f"p95 {alone['latency_ms_p95']:.0f} ms)")
    print(f"  next to a {args.bulk_seconds:g} s bulk sender: {paced['fps']:.1f} frames/s = {100 * kept:.0f}% of alone "
          f"(latency p50 {paced['latency_ms_p50']:.0f} ms, p95 {paced['latency_ms_p95']:.0f} ms); "
          f"bulk got {bulk.get('frames', 0)} frames at {bulk.get('fps', 0):.1f} frames/s")
    if args.json:
        pathlib.Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(args.json).write_text(json.dumps(result, indent=2))
    return 0
