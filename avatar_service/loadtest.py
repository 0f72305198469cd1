"""`avatarlab loadtest`: N concurrent Animate sessions on loopback, audio streamed like a game streams
an NPC's voice, and what came back measured: frames expected, received, lost and duplicated, drift of
frame timestamps against the audio clock, how far each frame arrives behind the live audio it shows,
frame latency and peak server memory.

Timing terms (per frame i, fps f, lookahead L from SessionStarted):
  audio clock      frame i shows audio [i/f, (i+1)/f); `pts_drift_ms` is pts_ms - 1000*i/f.
  latency          arrival time - the moment the audio frame i needs ((i+1)/f + L) had been sent.
  lag              (realtime only) arrival time - (stream start + (i+1)/f): how far the face runs
                   behind the voice a listener hears live; at best about L plus one chunk.
A run "holds real time" when no frame is lost or duplicated and p99 latency stays under --max-p99-ms.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import pathlib
import socket
import subprocess
import sys
import time


def register(sub) -> None:
    p = sub.add_parser("loadtest", help="N concurrent real-time sessions; frame loss, drift, latency, memory")
    p.add_argument("--streams", type=int, default=4, help="concurrent Animate sessions")
    p.add_argument("--seconds", type=float, default=10.0, help="audio seconds each session streams")
    p.add_argument("--json", dest="json_out", help="write the full report here")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--server", help="HOST:PORT of a running server (default: start a local server process)")
    where.add_argument("--in-process", action="store_true",
                       help="run the server in this process (its memory then includes the clients')")
    p.add_argument("--server-pid", type=int, help="with --server on this machine: read its peak memory from /proc")
    p.add_argument("--token", help="bearer token for --server")
    p.add_argument("--model", default="tiny", help="model of a local server: default, tiny or a folder")
    p.add_argument("--backend", default="torch", choices=["torch", "onnx"])
    p.add_argument("--realtime", action="store_true", help="pace audio at real time (default: as fast as it goes)")
    p.add_argument("--chunk-ms", type=int, default=40, help="audio chunk length")
    p.add_argument("--fps", type=int, default=25)
    p.add_argument("--size", type=int, default=128, help="frame width and height")
    p.add_argument("--pixel-format", default="jpeg", choices=["jpeg", "rgb8", "rgba8"])
    p.add_argument("--delta", action="store_true", help="FRAME_MODE_DELTA instead of full frames")
    p.add_argument("--steps", type=int, default=0, help="sampler steps (0 = model default)")
    p.add_argument("--max-p99-ms", type=float, default=250.0, help="p99 latency bound for 'holds real time'")
    p.set_defaults(func=run)


# ------------------------------------------------------------------------------------------ one stream
@dataclasses.dataclass
class StreamResult:
    stream: int
    status: str = "OK"
    detail: str = ""
    expected: int = 0
    received: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    lookahead_ms: int = 0
    max_abs_pts_drift_ms: float = 0.0
    end_drift_ms: float = 0.0  # (last frame's pts + duration) - audio duration
    latencies_ms: list = dataclasses.field(default_factory=list)
    lags_ms: list = dataclasses.field(default_factory=list)
    fps_received: float = 0.0
    bytes: int = 0


def _speech(seconds: float, rate: int = 16000):
    """The bundled spoken line, looped to `seconds`, as s16le bytes."""
    import numpy as np

    from avatar_service.media import read_audio

    line = read_audio(pathlib.Path(__file__).parent / "assets" / "demo_line.wav", rate)
    n = int(round(seconds * rate))
    audio = np.resize(line, n)
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes(), n / rate


def _one_stream(k: int, target: str, avatar_id: str, pcm: bytes, duration_s: float, args, metadata,
                      start_at: float) -> StreamResult:
    import grpc

    from avatar_service.api import pb, pb_grpc
    from avatar_service.responses import items

    rate, fps = 16000, args.fps
    res = StreamResult(stream=k, expected=math.ceil(duration_s * fps - 1e-9))
    chunk_bytes = 2 * rate * args.chunk_ms // 1000
    sent_at: list[tuple[float, float]] = []  # (audio seconds sent so far, wall time)
    fmt = {"jpeg": pb.PIXEL_FORMAT_JPEG, "rgb8": pb.PIXEL_FORMAT_RGB8,
           "rgba8": pb.PIXEL_FORMAT_RGBA8}[args.pixel_format]
    config = pb.AnimateConfig(
        avatar_id=avatar_id,
        audio_format=pb.AudioFormat(encoding=pb.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=rate, channels=1),
        video=pb.VideoOptions(fps=fps, width_px=args.size, height_px=args.size, pixel_format=fmt,
                              frame_mode=pb.FRAME_MODE_DELTA if args.delta else pb.FRAME_MODE_FULL),
        generation=pb.GenerationOptions(seed=k, sampler_steps=args.steps))
    t0 = start_at

    def requests():
        yield pb.AnimateRequest(config=config)
        for j, i in enumerate(range(0, len(pcm), chunk_bytes)):
            if args.realtime:  # absolute schedule: chunk j leaves when its audio would have been spoken
                delay = t0 + (j + 1) * args.chunk_ms / 1000 - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            data = pcm[i:i + chunk_bytes]
            yield pb.AnimateRequest(audio=pb.AudioChunk(data=data))
            sent_at.append(((i + len(data)) / 2 / rate, time.perf_counter()))
        yield pb.AnimateRequest(end_of_audio=pb.EndOfAudio())
        sent_at.append((math.inf, time.perf_counter()))

    def needed_at(audio_s: float) -> float:
        """Wall time at which the stream had sent audio up to `audio_s` (end of audio counts as all)."""
        lo, hi = 0, len(sent_at) - 1  # sent_at only grows; bisect on its current length
        while lo < hi:
            mid = (lo + hi) // 2
            if sent_at[mid][0] + 1e-9 >= audio_s:
                hi = mid
            else:
                lo = mid + 1
        return sent_at[lo][1]

    seen: set[int] = set()
    first_t = last_t = None
    prev = -1
    opts = [("grpc.max_receive_message_length", 64 << 20)]
    time.sleep(max(0.0, t0 - time.perf_counter()))
    with grpc.insecure_channel(target, options=opts) as channel:
        stub = pb_grpc.AvatarServiceStub(channel)
        try:
            for kind, value in items(stub.Animate(requests(), metadata=metadata)):
                now = time.perf_counter()
                if kind == "started":
                    res.lookahead_ms = value.lookahead_ms
                elif kind == "frame":
                    f = value
                    i = f.index
                    res.received += 1
                    res.bytes += len(f.pixels)
                    if i in seen:
                        res.duplicated += 1
                    seen.add(i)
                    if i <= prev:
                        res.out_of_order += 1
                    prev = i
                    res.max_abs_pts_drift_ms = max(res.max_abs_pts_drift_ms, abs(f.pts_ms - 1000 * i / fps))
                    need = (i + 1) / fps + res.lookahead_ms / 1000
                    res.latencies_ms.append((now - needed_at(min(need, duration_s))) * 1000)
                    if args.realtime:
                        res.lags_ms.append((now - (t0 + (i + 1) / fps)) * 1000)
                    if first_t is None:
                        first_t = now
                    last_t = now
                    res.end_drift_ms = f.pts_ms + f.duration_ms - duration_s * 1000
        except grpc.RpcError as e:
            res.status, res.detail = e.code().name, e.details() or ""
    res.lost = res.expected - len({i for i in seen if 0 <= i < res.expected})
    if first_t is not None and last_t > first_t:
        res.fps_received = (len(seen) - 1) / (last_t - first_t)
    return res


# ------------------------------------------------------------------------------------------ servers
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _peak_rss_mb(pid: int) -> float | None:
    """VmHWM: the process's peak resident memory since it started."""
    try:
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@contextlib.contextmanager
def local_server(model: str, backend: str, streams: int):
    """`avatarlab serve` in a child process on a free loopback port, its limits opened to `streams`."""
    import tempfile

    store = tempfile.TemporaryDirectory(prefix="avatarlab-loadtest-")
    port = _free_port()
    env = dict(os.environ, AVATARLAB_MAX_CONCURRENT_SESSIONS=str(max(streams, 1)),
               AVATARLAB_MAX_SESSIONS_PER_CLIENT=str(max(streams, 1)))
    env.pop("AVATARLAB_AUTH_TOKENS", None)
    proc = subprocess.Popen([sys.executable, "-m", "avatar_service.cli", "serve", "--model", model,
                             "--backend", backend,
                             "--store", store.name, "--listen", f"127.0.0.1:{port}"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in proc.stdout:  # the server prints this line once the model is warm
            if "listening on port" in line:
                break
        else:
            raise RuntimeError(f"the local server exited with {proc.wait()} before it listened")
        # keep draining its log so it never blocks on a full pipe
        import threading
        threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
        yield f"127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        store.cleanup()


# ------------------------------------------------------------------------------------------ report
def _pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, math.ceil(q / 100 * len(s)) - 1))]


def summarize(results: list[StreamResult], args, peak_mb: float | None, wall_s: float, memory_of: str) -> dict:
    lat = [x for r in results for x in r.latencies_ms]
    lag = [x for r in results for x in r.lags_ms]
    ok = [r for r in results if r.status == "OK"]
    summary = {
        "streams": args.streams, "seconds": args.seconds, "realtime": args.realtime, "fps": args.fps,
        "size_px": args.size, "pixel_format": args.pixel_format, "model": None if args.server else args.model,
        "streams_ok": len(ok),
        "streams_failed": {r.stream: f"{r.status}: {r.detail}" for r in results if r.status != "OK"},
        "frames_expected": sum(r.expected for r in results), "frames_received": sum(r.received for r in results),
        "frames_lost": sum(r.lost for r in results), "frames_duplicated": sum(r.duplicated for r in results),
        "frames_out_of_order": sum(r.out_of_order for r in results),
        "max_abs_pts_drift_ms": max((r.max_abs_pts_drift_ms for r in results), default=0.0),
        "max_abs_end_drift_ms": max((abs(r.end_drift_ms) for r in ok), default=None),
        "latency_ms_p50": _pct(lat, 50), "latency_ms_p99": _pct(lat, 99), "latency_ms_max": max(lat, default=None),
        "lag_ms_p50": _pct(lag, 50), "lag_ms_p99": _pct(lag, 99), "lag_ms_max": max(lag, default=None),
        "lookahead_ms": max((r.lookahead_ms for r in results), default=0),
        "min_stream_fps": min((r.fps_received for r in ok), default=0.0),
        "aggregate_fps": sum(r.received for r in results) / max(wall_s, 1e-9),
        "mbit_per_s": sum(r.bytes for r in results) * 8 / 1e6 / max(wall_s, 1e-9),
        "peak_server_rss_mb": peak_mb, "memory_of": memory_of, "wall_s": wall_s,
        # other work on the machine skews real-time numbers: say how busy it was
        "cpus": os.cpu_count(), "load_avg_1min_after": round(os.getloadavg()[0], 2),
    }
    summary["holds_realtime"] = bool(
        args.realtime and len(ok) == len(results) and summary["frames_lost"] == 0 and summary["frames_duplicated"] == 0
        and summary["latency_ms_p99"] is not None and summary["latency_ms_p99"] <= args.max_p99_ms)
    return summary


def table(summary: dict) -> str:
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.1f}"
        return "-" if v is None else str(v)
    width = max(len(k) for k in summary)
    return "\n".join(f"{k:<{width}}  {fmt(v)}" for k, v in summary.items())


def _run_all(target: str, args, metadata) -> tuple[list[StreamResult], float]:
    """One client thread per session (blocking gRPC), as each NPC's audio would come from its own source."""
    from concurrent.futures import ThreadPoolExecutor

    import grpc

    from avatar_service.api import pb, pb_grpc

    portrait = (pathlib.Path(__file__).parent / "assets" / "astronaut.png").read_bytes()
    with grpc.insecure_channel(target) as ch:
        avatar = pb_grpc.AvatarServiceStub(ch).CreateAvatar(
            pb.CreateAvatarRequest(display_name="loadtest", portrait_image=portrait), metadata=metadata)
    pcm, duration_s = _speech(args.seconds)
    start = time.perf_counter() + 0.5
    # stagger starts across one chunk so sessions do not send in lockstep, as NPCs would not
    with ThreadPoolExecutor(args.streams) as pool:
        futures = [pool.submit(_one_stream, k, target, avatar.avatar_id, pcm, duration_s, args, metadata,
                               start + k * args.chunk_ms / 1000 / args.streams) for k in range(args.streams)]
        results = [f.result() for f in futures]
    return results, time.perf_counter() - start


def run(args) -> int:
    import grpc  # noqa: F401  (fail early if the runtime is missing)

    if args.streams < 1 or args.seconds <= 0:
        raise ValueError("--streams must be at least 1 and --seconds positive")
    metadata = [("authorization", f"Bearer {args.token}")] if args.token else None
    if args.server:
        ctx, memory_of = contextlib.nullcontext((args.server, args.server_pid)), "server process (--server-pid)"
    elif args.in_process:
        ctx, memory_of = _in_process(args), "this process (server and clients together)"
    else:
        ctx, memory_of = local_server(args.model, args.backend, args.streams), "server process"
    with ctx as (target, pid):
        results, wall = _run_all(target, args, metadata)
        peak = _peak_rss_mb(pid) if pid else None
    summary = summarize(results, args, peak, wall, memory_of if peak is not None else "unknown")
    print(table(summary))
    if args.json_out:
        out = pathlib.Path(args.json_out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"summary": summary, "streams": [dataclasses.asdict(r) for r in results]}, indent=1))
    return 0 if summary["streams_ok"] == args.streams else 1


@contextlib.contextmanager
def _in_process(args):
    import tempfile

    from avatar_service.server.inprocess import InProcessServer
    from avatar_service.server.settings import ServerSettings

    n = max(1, args.streams)
    with tempfile.TemporaryDirectory(prefix="avatarlab-loadtest-") as store:
        settings = ServerSettings.load(env={}, listen="127.0.0.1:0", model=args.model, backend=args.backend,
                                       store_dir=store, max_concurrent_sessions=n, max_sessions_per_client=n)
        with InProcessServer(settings) as srv:
            yield srv.target, os.getpid()
