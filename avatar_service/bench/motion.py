"""`avatarlab bench motion`: how many real-time motion-only streams (visemes and blendshapes, no images)
one server holds, and the latency from audio to motion.

    avatarlab bench motion [--server HOST:PORT [--server-pid PID]] [--frontend mel|whisper]
                           [--streams 4,8,16,32] [--seconds 8] [--chunk-ms 100] [--clients 1]
                           [--frames-per-message 8]

Each stream sends real speech in `--chunk-ms` chunks at real-time pace over gRPC (Animate, motion_only).
A frame's latency is the time from sending the last audio chunk the frame covers to receiving the frame.
A count of streams holds real time when the frames' 95th-percentile latency stays under `--max-p95-ms`
and no session falls behind (the last frame within that bound of the last audio). Without --server the
server runs in this process (its motion-only front end from --frontend, session limits raised to the
largest count), so the clients share its CPU: the numbers are a floor. `--clients N` spreads the
streams over N client processes (one Python process tops out at a few thousand messages a second).
With `--server-pid`, each round also reports the server's CPU time per stream-second of audio, and the
clients' (the bench's own processes, from their first stream on).
`--frames-per-message N` is the sessions' max_frames_per_message: frames ready at the same moment come up
to N a message (default 8, what the C ABI's motion-only sessions ask for; 1 is one message a frame).
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import time

import numpy as np

from avatar_service.api import pb, pb_grpc
from avatar_service.responses import aitems

# What client_core's motion-only sessions ask for (kMotionFramesPerMessage in client_core/src/session.cc).
C_ABI_FRAMES_PER_MESSAGE = 8


def add_arguments(p) -> None:
    p.add_argument("--server", help="HOST:PORT of a running server; default: an in-process one")
    p.add_argument("--streams", default="4,8,16,32", help="concurrent stream counts to try, in order")
    p.add_argument("--seconds", type=float, default=8.0, help="speech each stream sends")
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--max-p95-ms", type=float, default=500.0, help="real time held while p95 latency is under this")
    p.add_argument("--model", default="tiny", help="in-process server's face model (unused by motion-only sessions)")
    p.add_argument("--frontend", choices=("auto", "mel", "whisper"), default="auto",
                   help="in-process server's motion-only front end (motion_frontend)")
    p.add_argument("--motion-model", default="default", help="in-process server's motion model folder")
    p.add_argument("--chunk-ms", type=float, default=100.0, help="audio per request message")
    p.add_argument("--clients", type=int, default=1, help="client processes the streams are spread over")
    p.add_argument("--channels", type=int, default=1,
                   help="connections per client process, the streams spread over them (a `serve --processes N` "
                        "server spreads connections across its processes)")
    p.add_argument("--server-pid", type=int, help="the --server's process id: report its CPU per stream-second")
    p.add_argument("--frames-per-message", type=int, default=C_ABI_FRAMES_PER_MESSAGE,
                   help="max_frames_per_message of each session (1: one frame a message)")


async def _stream(stub, avatar_id: str, pcm: np.ndarray, fps: int, chunk: int, per_message: int,
                  start_delay: float) -> list[float]:
    """One paced motion-only session; latency (s) of each frame after its audio was sent."""
    await asyncio.sleep(start_delay)
    sent_at: list[tuple[int, float]] = []  # (samples sent so far, when)

    async def requests():
        yield pb.AnimateRequest(config=pb.AnimateConfig(
            avatar_id=avatar_id, motion_only=True, video=pb.VideoOptions(fps=fps), max_frames_per_message=per_message,
            audio_format=pb.AudioFormat(encoding=pb.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=16000, channels=1)))
        t0 = time.perf_counter()
        for k, i in enumerate(range(0, len(pcm), chunk)):
            await asyncio.sleep(max(0.0, t0 + k * chunk / 16000 - time.perf_counter()))
            yield pb.AnimateRequest(audio=pb.AudioChunk(data=pcm[i:i + chunk].tobytes()))
            sent_at.append((min(len(pcm), i + chunk), time.perf_counter()))
        yield pb.AnimateRequest(end_of_audio=pb.EndOfAudio())

    latencies = []
    async for kind, frame in aitems(stub.Animate(requests())):
        if kind != "frame":
            continue
        now = time.perf_counter()
        need = min(len(pcm), int((frame.index + 1) * 16000 / fps))  # the frame's audio end
        when = next((t for n, t in sent_at if n >= need), now)
        latencies.append(now - when)
    return latencies


async def _streams(target: str, avatar_id: str, pcm: np.ndarray, fps: int, chunk: int, per_message: int,
                   delays: list[float], channels: int = 1) -> list:
    import grpc

    # each channel its own connection (a local subchannel pool), as separate game servers would be: a
    # `serve --processes N` server spreads connections, not calls
    chans = [grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)]) for _ in range(channels)]
    try:
        stubs = [pb_grpc.AvatarServiceStub(c) for c in chans]
        return await asyncio.gather(*[_stream(stubs[k % channels], avatar_id, pcm, fps, chunk, per_message, d)
                                      for k, d in enumerate(delays)])
    finally:
        for c in chans:
            await c.close()


def _client(target: str, avatar_id: str, pcm: np.ndarray, fps: int, chunk: int, per_message: int,
            delays: list[float], channels: int = 1) -> tuple[list, float]:
    """One client process's share of the streams (a top-level function: spawned), and the CPU seconds its
    process spent on them (gRPC's own threads included, the process's start-up not)."""
    import resource

    import grpc  # noqa: F401  (loaded before the clock starts)

    def cpu_s() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    start = cpu_s()
    latencies = asyncio.run(_streams(target, avatar_id, pcm, fps, chunk, per_message, delays, channels))
    return latencies, cpu_s() - start


def _cpu_s(pid: int | None) -> float:
    """User + system CPU seconds so far of a process and its children (a `serve --processes N` server is
    one process tree), from Linux /proc."""
    if pid is None:
        return float("nan")
    import os
    import pathlib

    total = 0.0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            fields = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            todo += [int(c) for t in pathlib.Path(f"/proc/{p}/task").iterdir()
                     for c in (t / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):  # a child that ended between the reads
            continue
    return total


def _round(target: str, avatar_id: str, audio: np.ndarray, n: int, fps: int, chunk: int, per_message: int,
           clients: int, server_pid: int | None, channels: int = 1) -> dict:
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    delays = [k * chunk / 16000 / n for k in range(n)]  # starts spread over one chunk, as independent NPCs would be
    cpu, t = _cpu_s(server_pid), time.perf_counter()
    if clients <= 1:
        results, client_cpu = _client(target, avatar_id, pcm, fps, chunk, per_message, delays, channels)
    else:
        import concurrent.futures
        import multiprocessing

        with concurrent.futures.ProcessPoolExecutor(clients, mp_context=multiprocessing.get_context("spawn")) as pool:
            parts = pool.map(_client, *zip(*[(target, avatar_id, pcm, fps, chunk, per_message, delays[k::clients],
                                              channels) for k in range(clients)]))
            parts = list(parts)
            results, client_cpu = [r for part, _ in parts for r in part], sum(c for _, c in parts)
    wall, cpu = time.perf_counter() - t, _cpu_s(server_pid) - cpu
    lat = np.concatenate([np.asarray(r) for r in results]) * 1000
    row = {"streams": n, "frames": int(len(lat)), "p50_ms": float(np.percentile(lat, 50)),
           "p95_ms": float(np.percentile(lat, 95)), "max_ms": float(lat.max()),
           "last_frame_ms": float(np.median([r[-1] * 1000 for r in results])), "wall_s": wall}
    if server_pid is not None:  # CPU per second of audio the server turned into motion, and the clients spent
        row["client_cpu_ms_per_stream_s"] = 1000 * client_cpu / (n * len(audio) / 16000)
        row["server_cpu_ms_per_stream_s"] = 1000 * cpu / (n * len(audio) / 16000)
    return row


def run(args) -> int:
    import tempfile

    from avatar_service.client import AvatarLabClient
    from avatar_service.media import read_audio
    from avatar_service.render import in_process_server
    from avatar_service.runtime.warp_renderer import EMBEDDED_MOTION

    clip = read_audio(EMBEDDED_MOTION.parent / "demo_line.wav", 16000)
    audio = np.resize(clip, int(args.seconds * 16000)).astype(np.float32)
    counts = [int(s) for s in args.streams.split(",")]
    ctx = contextlib.nullcontext(args.server) if args.server else in_process_server(
        args.model, "torch", motion_frontend=args.frontend, motion_model=args.motion_model, max_concurrent_sessions=max(counts),
        max_sessions_per_client=max(counts))
    rows = []
    chunk = int(round(args.chunk_ms * 16))
    with tempfile.TemporaryDirectory(), ctx as target, AvatarLabClient(target) as client:
        avatar = client.create_avatar(image=EMBEDDED_MOTION.parent / "astronaut.png")
        for n in counts:
            row = _round(target, avatar.avatar_id, audio, n, args.fps, chunk, args.frames_per_message, args.clients,
                         args.server_pid, args.channels)
            row["real_time"] = row["p95_ms"] <= args.max_p95_ms and row["last_frame_ms"] <= args.max_p95_ms
            rows.append(row)
            print(json.dumps({k: round(v, 1) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
            if not row["real_time"]:
                break
    held = [r["streams"] for r in rows if r["real_time"]]
    print(json.dumps({"real_time_streams_held": max(held) if held else 0, "fps": args.fps, "chunk_ms": args.chunk_ms,
                      "frames_per_message": args.frames_per_message,
                      "frontend": "server's own" if args.server else args.frontend, "max_p95_ms": args.max_p95_ms}))
    return 0
