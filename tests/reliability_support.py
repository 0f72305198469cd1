"""Helpers for the reliability tests: real servers (in-process thread or child process), real speech and
portraits, sessions held open, certificates made on the fly."""
from __future__ import annotations

import io
import os
import pathlib
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
import zlib

import grpc
import numpy as np

from avatar_service.api import pb, pb_grpc
from avatar_service.responses import items
from avatar_service.server import inprocess

REPO = pathlib.Path(__file__).resolve().parents[1]
ASSETS = REPO / "avatar_service" / "assets"
RATE = 16000
BIG = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]


def speech(seconds: float | None = None) -> np.ndarray:
    """The bundled spoken line, 16 kHz mono float32, looped or cut to `seconds`."""
    from avatar_service.media import read_audio
    a = read_audio(ASSETS / "demo_line.wav", RATE)
    return a if seconds is None else np.resize(a, int(seconds * RATE))


def pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


def portrait_jpeg(side: int = 300) -> bytes:
    """The bundled portrait shrunk to a small JPEG (fits a 64 KiB message limit)."""
    from PIL import Image
    buf = io.BytesIO()
    Image.open(ASSETS / "astronaut.png").convert("RGB").resize((side, side)).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(avatar_id: str, seed: int = 0, size: int = 64, fps: int = 25, steps: int = 0) -> pb.AnimateRequest:
    return pb.AnimateRequest(config=pb.AnimateConfig(
        avatar_id=avatar_id,
        audio_format=pb.AudioFormat(encoding=pb.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=RATE, channels=1),
        video=pb.VideoOptions(fps=fps, width_px=size, height_px=size, pixel_format=pb.PIXEL_FORMAT_JPEG),
        generation=pb.GenerationOptions(seed=seed, sampler_steps=steps)))


def requests(avatar_id: str, audio: np.ndarray, chunk_ms: int = 40, realtime: bool = False, seed: int = 0,
             hold: threading.Event | None = None, size: int = 64):
    """An Animate request stream; with `hold` it stays open after the audio until the event is set."""
    yield config(avatar_id, seed, size)
    data, step = pcm16(audio), 2 * RATE * chunk_ms // 1000
    t0 = time.perf_counter()
    for j, i in enumerate(range(0, len(data), step)):
        if realtime:
            time.sleep(max(0.0, t0 + (j + 1) * chunk_ms / 1000 - time.perf_counter()))
        yield pb.AnimateRequest(audio=pb.AudioChunk(data=data[i:i + step]))
    if hold is not None:
        hold.wait(60)
        return
    yield pb.AnimateRequest(end_of_audio=pb.EndOfAudio())


def run_session(stub, avatar_id: str, audio: np.ndarray, metadata=None, timeout: float = 60, **kw):
    """All responses of one session: (frames with arrival times, ended message)."""
    frames, ended = [], None
    for kind, value in items(stub.Animate(requests(avatar_id, audio, **kw), metadata=metadata, timeout=timeout)):
        if kind == "frame":
            frames.append((time.perf_counter(), value))
        elif kind == "ended":
            ended = value
    return frames, ended


class HeldSession:
    """A session that is admitted (its `started` received) and stays open until `close()`."""

    def __init__(self, stub, avatar_id: str, metadata=None):
        self.release = threading.Event()
        self.call = stub.Animate(requests(avatar_id, speech(0.2), hold=self.release), metadata=metadata, timeout=60)
        first = next(self.call)
        assert first.WhichOneof("message") == "started"

    def close(self):
        self.release.set()
        self.call.cancel()


def admission(stub, avatar_id: str, metadata=None) -> grpc.StatusCode:
    """Open a short session: OK as soon as it is admitted (`started` arrives), else the refusal's code."""
    try:
        call = stub.Animate(requests(avatar_id, speech(0.08)), metadata=metadata, timeout=10)
        first = next(call)
        assert first.WhichOneof("message") == "started"
        for _ in call:  # let it finish normally, so it frees its own slot
            pass
        return grpc.StatusCode.OK
    except grpc.RpcError as e:
        return e.code()


def freed_within(stub, avatar_id: str, metadata, seconds: float) -> float:
    """Poll admission until a session is admitted; the seconds it took (fails past `seconds`)."""
    t0 = time.perf_counter()
    while True:
        code = admission(stub, avatar_id, metadata)
        took = time.perf_counter() - t0
        if code == grpc.StatusCode.OK:
            return took
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED, code
        assert took < seconds, f"the slot was still taken {took:.2f} s later"
        time.sleep(0.02)


def status_of(fn) -> tuple[grpc.StatusCode, str]:
    """Run a call (unary, or drain a stream); return its status code and details."""
    try:
        r = fn()
        if hasattr(r, "__iter__") and not hasattr(r, "ListFields"):
            for _ in r:
                pass
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        return e.code(), e.details() or ""


# ------------------------------------------------------------------------------------- servers
class InProcessServer(inprocess.InProcessServer):
    """The shared in-process server (own thread and event loop, so tests can monkeypatch it), with TLS channels."""

    def channel(self, credentials=None) -> grpc.Channel:
        if credentials is not None:
            return grpc.secure_channel(self.target, credentials, BIG)
        return grpc.insecure_channel(self.target, BIG)

    def stub(self, credentials=None):
        return pb_grpc.AvatarServiceStub(self.channel(credentials))


def settings(tmp, **overrides):
    from avatar_service.server.settings import ServerSettings
    # the tiny diffusion generator, so faults can be injected into its denoiser (conftest.start_server says why)
    base = dict(listen="127.0.0.1:0", model="tiny", store_dir=str(tmp / "avatars"), face_px=64, renderer="diffusion")
    return ServerSettings.load(env={}, **{**base, **overrides})


class ServerProcess:
    """`avatarlab serve --model tiny` as a child process, the way an operator runs it."""

    def __init__(self, store: pathlib.Path, port: int | None = None, env: dict | None = None, grace_s: float = 5.0,
                 log: pathlib.Path | None = None, prelude: str = "", wait: bool = True, model: str = "tiny",
                 face_px: int = 64, args: tuple[str, ...] = ()):
        """`prelude`: Python run in the server process before the CLI (a test's hook, e.g. to gate warm-up);
        `wait=False` returns at once instead of when health says SERVING."""
        self.port = port or free_port()
        self.target = f"127.0.0.1:{self.port}"
        self.log_path = log or store.parent / f"server-{self.port}.log"
        self._log = open(self.log_path, "a")
        full_env = dict(os.environ, PYTHONPATH=str(REPO), **(env or {}))
        entry = ["-m", "avatar_service.cli"] if not prelude else \
            ["-c", prelude + "\nimport sys\nfrom avatar_service.cli import main\nsys.exit(main())"]
        self.proc = subprocess.Popen(
            [sys.executable, *entry, "serve", "--model", model, "--store", str(store),
             "--listen", self.target, "--face-px", str(face_px), "--grace", str(grace_s), *args],
            env=full_env, stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO)
        if wait:
            self.wait_serving()

    def wait_serving(self, timeout: float = 120) -> None:
        from grpc_health.v1 import health_pb2, health_pb2_grpc
        deadline = time.monotonic() + timeout
        # retry the connection every 100 ms rather than on grpc's growing backoff (which can pass 10 s)
        fast = [("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
                ("grpc.max_reconnect_backoff_ms", 100)]
        with grpc.insecure_channel(self.target, fast) as ch:
            health = health_pb2_grpc.HealthStub(ch)
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
                try:
                    if health.Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1:
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.1)
        raise TimeoutError(f"server not SERVING after {timeout} s:\n{self.log()}")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text()[-5000:]

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(self.target, BIG)

    def stub(self):
        return pb_grpc.AvatarServiceStub(self.channel())

    def rss_kb(self, field: str = "VmRSS") -> int:
        """Resident memory now, or with field="VmHWM" its peak since the process started."""
        for line in pathlib.Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise RuntimeError(f"no {field}")

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._log.close()

    def terminate(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout)
        self._log.close()
        return rc


# ------------------------------------------------------------------------------------- certificates
def make_pki(folder: pathlib.Path) -> dict[str, pathlib.Path]:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate, as PEM files."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def cert(subject, key, issuer, issuer_key, ca=False, san=None, usage=None):
        b = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer))
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if san:
            b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
        if usage:
            b = b.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        return b.sign(issuer_key, hashes.SHA256())

    def write(stem, key, crt):
        (folder / f"{stem}.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                               serialization.PrivateFormat.PKCS8,
                                                               serialization.NoEncryption()))
        (folder / f"{stem}.crt").write_bytes(crt.public_bytes(serialization.Encoding.PEM))

    folder.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = cert("avatarlab test CA", ca_key, "avatarlab test CA", ca_key, ca=True)
    write("ca", ca_key, ca)
    srv_key = ec.generate_private_key(ec.SECP256R1())
    write("server", srv_key, cert("localhost", srv_key, "avatarlab test CA", ca_key,
                                  san=[x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
                                  usage=ExtendedKeyUsageOID.SERVER_AUTH))
    cli_key = ec.generate_private_key(ec.SECP256R1())
    write("client", cli_key, cert("game-server-1", cli_key, "avatarlab test CA", ca_key,
                                  usage=ExtendedKeyUsageOID.CLIENT_AUTH))
    other_key = ec.generate_private_key(ec.SECP256R1())  # a CA the server does not trust
    other = cert("rogue CA", other_key, "rogue CA", other_key, ca=True)
    rogue_key = ec.generate_private_key(ec.SECP256R1())
    write("rogue", rogue_key, cert("rogue client", rogue_key, "rogue CA", other_key,
                                   usage=ExtendedKeyUsageOID.CLIENT_AUTH))
    del other
    return {k: folder / k for k in ("ca", "server", "client", "rogue")}


# ------------------------------------------------------------------------------------- network faults
class BlackHoleProxy:
    """A TCP relay to `target` that can go silent: after `freeze()` it neither forwards nor closes,
    like a client host that lost power or network (no FIN, no RST ever reaches the server)."""

    def __init__(self, target: str):
        host, port = target.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.frozen = threading.Event()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.target = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            self.sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket):
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                return
            if not data or self.frozen.is_set():
                self.frozen.wait()  # swallow everything from now on, keep the sockets open
                return
            try:
                dst.sendall(data)
            except OSError:
                return

    def freeze(self):
        self.frozen.set()

    def close(self):
        self.listener.close()
        for s in self.sockets:
            s.close()


SERVICE = "/avatarlab.v1.AvatarService/"


# ------------------------------------------------------------------------------------- a raw HTTP/2 peer
class RawPeer:
    """One HTTP/2 connection driven by hand. It answers PING and SETTINGS (h2 does that itself) but sends a
    WINDOW_UPDATE never: with `window=0` the server cannot send it a single byte of any response body."""

    def __init__(self, target: str, window: int = 65535):
        import h2.config
        import h2.connection
        import h2.settings

        host, port = target.rsplit(":", 1)
        self.authority = target
        self.sock = socket.create_connection((host, int(port)))
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.headers: dict[int, dict[str, str]] = {}
        self.ended: set[int] = set()
        self.reset: set[int] = set()
        self.data_bytes: dict[int, int] = {}
        self.closed = False
        self._flush()
        threading.Thread(target=self._read, daemon=True).start()

    def _flush(self):
        out = self.conn.data_to_send()
        if out:
            self.sock.sendall(out)

    def _read(self):
        import h2.events as ev
        import h2.exceptions
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            with self.changed:
                try:
                    events = self.conn.receive_data(data) if data else None
                except h2.exceptions.ProtocolError:  # e.g. a PING after the server's GOAWAY
                    events = None
                if events is None:
                    self.closed = True
                    self.changed.notify_all()
                    return
                for e in events:
                    if isinstance(e, (ev.ResponseReceived, ev.TrailersReceived)):
                        self.headers.setdefault(e.stream_id, {}).update(dict(e.headers))
                    elif isinstance(e, ev.DataReceived):  # counted, never acknowledged: the window stays shut
                        self.data_bytes[e.stream_id] = self.data_bytes.get(e.stream_id, 0) + len(e.data)
                    elif isinstance(e, ev.StreamEnded):
                        self.ended.add(e.stream_id)
                    elif isinstance(e, ev.StreamReset):  # (WindowUpdated needs nothing: notify_all below)
                        self.reset.add(e.stream_id)
                    elif isinstance(e, ev.ConnectionTerminated):
                        self.closed = True
                try:
                    self._flush()
                except OSError:
                    self.closed = True
                self.changed.notify_all()

    def call(self, method: str, messages=(), end: bool = True, headers=(), encoding: str | None = None) -> int:
        """Open a call to `method` and send `messages` (raw gRPC frames from `frame()`); `end` half-closes."""
        hdrs = [(":method", "POST"), (":scheme", "http"), (":path", SERVICE + method if "/" not in method else method),
                (":authority", self.authority), ("content-type", "application/grpc"), ("te", "trailers"),
                *((("grpc-encoding", encoding),) if encoding else ()), *headers]
        with self.lock:
            sid = self.conn.get_next_available_stream_id()
            self.conn.send_headers(sid, hdrs, end_stream=end and not messages)
            self._flush()
        for i, m in enumerate(messages):
            self.send(sid, m, end=end and i == len(messages) - 1)
        return sid

    def send(self, sid: int, data: bytes, end: bool = False) -> None:
        """Send as the server's flow-control window allows; gives up quietly once the server ends the stream."""
        with self.changed:
            while True:
                if self.closed or sid in self.reset or "grpc-status" in self.headers.get(sid, {}):
                    return
                n = min(len(data), self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size)
                if n == 0 and data:
                    assert self.changed.wait(30), "the server never opened its receive window"
                    continue
                self.conn.send_data(sid, data[:n], end_stream=end and n == len(data))
                self._flush()
                data = data[n:]
                if not data:
                    return

    def status(self, sid: int, timeout: float = 30) -> tuple[str, str]:
        """('0'..'16', message) once the call ends with a status, ('RST', '') if it was reset; fails on timeout."""
        with self.changed:
            ok = self.changed.wait_for(lambda: "grpc-status" in self.headers.get(sid, {}) or sid in self.reset
                                       or self.closed, timeout)
        assert ok, f"stream {sid} got no status within {timeout} s"
        if "grpc-status" in self.headers.get(sid, {}):
            h = self.headers[sid]
            return h["grpc-status"], urllib.parse.unquote(h.get("grpc-message", ""))
        return "RST", ""

    def close(self):
        self.sock.close()


def frame(message, compressed: bool = False) -> bytes:
    data = message if isinstance(message, bytes) else message.SerializeToString()
    return struct.pack(">BI", int(compressed), len(data)) + data


def gzip_bomb(inflated_bytes: int) -> bytes:
    """A gzip stream of `inflated_bytes` zeros (about a thousandth of that on the wire), made chunk by chunk."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk, out = bytes(1 << 20), []
    for _ in range(inflated_bytes >> 20):
        out.append(z.compress(chunk))
    out.append(z.flush())
    return b"".join(out)
