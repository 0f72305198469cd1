"""Peak memory of a real `avatarlab serve` process under hostile load (issue #22), measured from outside.

    .venv/bin/python -m avatar_service.bench.hostile_memory [--model default] [--out result.json]

Phases, each with the server's resident memory sampled every 10 ms from /proc:
  1. idle: SERVING, after one small create and one 1 s session (cold: before them);
  2. 24 concurrent maximal creates from 24 connections: 12 portraits of 15 MB (PNG, 5 Mpx) and 12 idle videos
     at the length limit (1080p, 9.8 s); a create refused with RESOURCE_EXHAUSTED (the CreateAvatar gate) is
     retried after 200 ms until all 24 are stored;
  3. a compressed-request flood: 64 requests (8 connections x 8 streams) of 1 MiB gzip that would inflate to
     1 GiB each, sent by a raw HTTP/2 client, plus 16 gzip-compressed CreateAvatar calls from grpc clients;
  4. settled: 10 s after the last request.
Goal (issue #22): peak under 2 GB, settled within 20% of idle. Needs the dev extra (h2)."""
from __future__ import annotations

import argparse
import io
import json
import pathlib
import sys
import tempfile
import threading
import time

import grpc
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[2]  # a checkout: the raw HTTP/2 client lives in tests/
sys.path.insert(0, str(REPO / "tests"))

from avatar_service.api import pb  # noqa: E402
from reliability_support import (ASSETS, RawPeer, ServerProcess, frame, gzip_bomb, portrait_jpeg,  # noqa: E402
                                 run_session, speech)


class Sampler:
    """Polls a process's VmRSS; `peak_mb()` since the last `reset()`."""

    def __init__(self, pid: int, period_s: float = 0.01):
        self.path, self.period_s = pathlib.Path(f"/proc/{pid}/status"), period_s
        self.peak = 0
        self.stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def rss_kb(self) -> int:
        for line in self.path.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def _run(self):
        while not self.stop.is_set():
            try:
                self.peak = max(self.peak, self.rss_kb())
            except OSError:
                return
            time.sleep(self.period_s)

    def reset(self) -> None:
        self.peak = self.rss_kb()

    def peak_mb(self) -> float:
        return round(self.peak / 1024, 1)

    def now_mb(self) -> float:
        return round(self.rss_kb() / 1024, 1)


def face(side: int) -> np.ndarray:
    from PIL import Image
    return np.asarray(Image.open(ASSETS / "astronaut.png").convert("RGB").resize((side, side)))


def max_portrait(target_bytes: int = 15 << 20) -> bytes:
    """A PNG of about `target_bytes`: noise (incompressible) around a real face."""
    from PIL import Image
    side = int((target_bytes / 3) ** 0.5)
    img = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    f = face(side // 3)
    img[side // 3: side // 3 + len(f), side // 3: side // 3 + len(f)] = f
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def max_video(tmp: pathlib.Path, seconds: float = 9.8) -> bytes:
    """1080p at 25 fps, `seconds` long (the limit is 10 s), a face that drifts a little."""
    from avatar_service.media import write_mp4
    f = face(480)
    frames = []
    for i in range(int(seconds * 25)):
        canvas = np.full((1080, 1920, 3), 100, np.uint8)
        dx = int(20 * np.sin(i / 12))
        canvas[300:780, 720 + dx:1200 + dx] = f
        frames.append(canvas)
    path = tmp / "max.mp4"
    write_mp4(path, frames, 25)
    return path.read_bytes()


def creates(target: str, payloads: list[pb.CreateAvatarRequest]) -> dict:
    refused, failed, done = [0], [], [0]
    lock = threading.Lock()

    def one(req):
        with grpc.insecure_channel(target, [("grpc.max_send_message_length", 64 << 20)]) as ch:
            from avatar_service.api import pb_grpc
            stub = pb_grpc.AvatarServiceStub(ch)
            while True:
                try:
                    stub.CreateAvatar(req, timeout=600)
                    with lock:
                        done[0] += 1
                    return
                except grpc.RpcError as e:
                    if e.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                        with lock:
                            failed.append(f"{e.code().name}: {e.details()[:120]}")
                        return
                    with lock:
                        refused[0] += 1
                    time.sleep(0.2)
    threads = [threading.Thread(target=one, args=(r,)) for r in payloads]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"stored": done[0], "refusals_retried": refused[0], "failed": failed,
            "seconds": round(time.perf_counter() - t0, 1)}


def grpc_name(status: str) -> str:
    return next((c.name for c in grpc.StatusCode if str(c.value[0]) == status), status)


def flood(target: str, portrait: bytes) -> dict:
    bomb = frame(gzip_bomb(1 << 30), compressed=True)
    codes: dict[str, int] = {}
    lock = threading.Lock()

    def count(key: str) -> None:
        with lock:
            codes[key] = codes.get(key, 0) + 1

    def connection():
        peer = RawPeer(target)
        try:
            sids = [peer.call("CreateAvatar", [bomb], encoding="gzip") for _ in range(8)]
            for sid in sids:
                status = peer.status(sid, timeout=120)[0]
                count(grpc_name(status))
        finally:
            peer.close()

    def grpc_gzip():
        with grpc.insecure_channel(target) as ch:
            from avatar_service.api import pb_grpc
            try:
                pb_grpc.AvatarServiceStub(ch).CreateAvatar(pb.CreateAvatarRequest(portrait_image=portrait),
                                                           compression=grpc.Compression.Gzip, timeout=60)
                key = "OK"
            except grpc.RpcError as e:
                key = e.code().name
            count(key)
    threads = [threading.Thread(target=connection) for _ in range(8)] + \
              [threading.Thread(target=grpc_gzip) for _ in range(16)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"statuses": codes, "wire_mb_per_request": round(len(bomb) / 2**20, 2), "seconds": round(time.perf_counter() - t0, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default", help="'default' (shipped) or 'tiny'")
    ap.add_argument("--out", help="write the result as JSON here too")
    args = ap.parse_args()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="avatarlab-hostile-"))
    print("making payloads ...", flush=True)
    portrait, video = max_portrait(), max_video(tmp)
    payloads = [pb.CreateAvatarRequest(portrait_image=portrait)] * 12 + [pb.CreateAvatarRequest(idle_video=video)] * 12
    print(f"portrait {len(portrait) / 2**20:.1f} MiB, video {len(video) / 2**20:.2f} MiB; starting the server ...",
          flush=True)
    srv = ServerProcess(tmp / "store", model=args.model, face_px=256, log=tmp / "server.log")
    try:
        s = Sampler(srv.proc.pid)
        time.sleep(2)
        result = {"model": args.model, "cold_idle_mb": s.now_mb()}
        # idle after one create and one session: the face detector, face mesh and model paths are initialised
        stub = srv.stub()
        avatar = stub.CreateAvatar(pb.CreateAvatarRequest(portrait_image=portrait_jpeg()), timeout=120)
        run_session(stub, avatar.avatar_id, speech(1.0), timeout=120)
        time.sleep(2)
        result["idle_mb"] = s.now_mb()
        s.reset()
        result["creates"] = creates(srv.target, payloads)
        result["creates"]["peak_mb"] = s.peak_mb()
        result["after_creates_mb"] = s.now_mb()
        s.reset()
        result["flood"] = flood(srv.target, portrait)
        result["flood"]["peak_mb"] = s.peak_mb()
        time.sleep(10)
        result["settled_mb"] = s.now_mb()
        result["settled_vs_idle"] = round(result["settled_mb"] / result["idle_mb"], 3)
        result["peak_mb"] = max(result["creates"]["peak_mb"], result["flood"]["peak_mb"])
        result["goals_met"] = result["peak_mb"] < 2048 and result["settled_vs_idle"] <= 1.2
    finally:
        srv.terminate(60)
    print(json.dumps(result, indent=2))
    if args.out:
        pathlib.Path(args.out).write_text(json.dumps(result, indent=2))
    return 0 if result["goals_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
