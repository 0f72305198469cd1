"""Server settings: defaults < settings file (JSON) < environment (AVATARLAB_*) < command-line flags."""
from __future__ import annotations

import json
import os
import pathlib

from pydantic import BaseModel, Field

from avatar_service.speech.config import SpeechConfig


class Limits(BaseModel):
    max_concurrent_sessions: int = Field(16, ge=1)
    max_sessions_per_client: int = Field(8, ge=1)
    max_audio_seconds_per_session: int = Field(600, ge=1)
    max_message_bytes: int = Field(16 * 1024 * 1024, ge=64 * 1024)
    max_portrait_pixels: int = Field(40_000_000, ge=4096)
    max_avatars: int = Field(10_000, ge=1)
    max_text_chars: int = Field(1000, ge=1)
    max_idle_video_seconds: int = Field(10, ge=1)
    max_display_name_chars: int = Field(128, ge=1, le=1024)
    # CreateAvatar work: `max_concurrent_creates` run at once and `max_queued_creates` more wait, without
    # their request body read; past that a create is refused (RESOURCE_EXHAUSTED) before its body is read.
    max_concurrent_creates: int = Field(2, ge=1)
    max_queued_creates: int = Field(8, ge=0)
    # An idle video's decoded frames, all together, after cropping around the face and scaling down to what
    # the avatar keeps; more pixels than this are sampled down further. Bounds one create's memory.
    max_idle_video_frame_bytes: int = Field(128 * 1024 * 1024, ge=16 * 1024 * 1024)
    # Decoded avatar states kept in memory for new sessions (least recently used go first; one always stays).
    avatar_cache_bytes: int = Field(256 * 1024 * 1024, ge=0)


class ServerSettings(BaseModel):
    listen: str = "127.0.0.1:50051"  # loopback unless asked otherwise
    model: str = "default"  # 'default' (embedded), 'tiny' (random, for tests) or a model folder
    backend: str = Field("torch", pattern="^(torch|onnx)$")
    device: str = "cpu"
    dtype: str = Field("float32", pattern="^(float32|bfloat16|float16)$")  # torch backend; half types for GPUs
    store_dir: str = "avatars"
    # remove the local store's crash leftovers at start; `serve --processes N` sweeps once, before its
    # processes start, and turns it off in each (one may be writing while another starts)
    store_sweep: bool = True
    # Shared avatar registry for several replicas, e.g. postgresql://user@db:5432/avatarlab (password from
    # the URL or PGPASSWORD / ~/.pgpass); unset = the local store_dir.
    store_url: str | None = None
    face_px: int = Field(256, ge=64, le=1024)  # side of each avatar's face texture
    # warp: the person's own pixels moved by speech (default); diffusion: the latent-diffusion generator
    renderer: str = Field("warp", pattern="^(warp|diffusion)$")
    motion_model: str = "default"  # the warp renderer's motion model: 'default' (embedded) or a folder
    # motion-only sessions' audio front end: 'mel', the motion model's log-mel student (a few ms of CPU a
    # stream second, hundreds of streams a machine), 'whisper', its teacher (about 160 ms a stream second),
    # or 'auto': mel when the motion model has a student. Image sessions and their mouth always use the
    # teacher, so pixels and mouth agree.
    motion_frontend: str = Field("auto", pattern="^(auto|whisper|mel)$")
    # how long the mel front end's batch waits for more sessions' audio chunks: fewer, larger batches (a
    # chunk costs about half as much in a batch of 4+ as alone) for this much more latency (10 ms: the
    # mouth thread went from 3.1 to 1.8 ms of CPU a stream-second at 100 streams, p50 latency +10 ms)
    motion_batch_wait_ms: float = Field(10.0, ge=0, le=100)
    # the inside of an opening mouth (warp renderer): plain (dark cavity + teeth edge) or diffusion (the
    # latent inner-mouth denoiser, runtime/mouth_fill.py); docs/renderer.md says which measures better
    mouth_fill: str = Field("plain", pattern="^(plain|diffusion)$")
    max_batch: int = Field(32, ge=1)
    # server processes on the one port (SO_REUSEPORT; server/processes.py): each its own event loop and
    # GIL, so a CPU-bound Python server uses more than one core. The kernel spreads connections, not calls,
    # across them; limits, caches and metrics are per process.
    processes: int = Field(1, ge=1, le=64)
    # numpy's OpenBLAS threads (server/blas_threads.py: idle workers spin; 0 = the library's default)
    blas_threads: int = Field(1, ge=0)
    batch_wait_ms: float = Field(3.0, ge=0)
    grace_s: float = Field(10.0, ge=0)  # SIGTERM drain time for in-flight streams
    # A client whose host vanishes without closing its connection is found by unanswered HTTP/2 pings:
    # its sessions end within keepalive_s + keepalive_timeout_s.
    keepalive_s: float = Field(10.0, ge=0.1)
    keepalive_timeout_s: float = Field(5.0, ge=0.1)
    # Clients that stall: each ends its call with DEADLINE_EXCEEDED (or, for a peer that reads nothing,
    # cancels it) and frees what it held.
    config_timeout_s: float = Field(10.0, gt=0)  # an Animate stream's config must arrive within this
    idle_session_timeout_s: float = Field(30.0, gt=0)  # a session that neither gets audio nor sends frames
    stalled_reader_timeout_s: float = Field(20.0, gt=0)  # a response the peer does not take (flow control)
    message_timeout_s: float = Field(10.0, gt=0)  # a unary call's request message must arrive within this
    auth_tokens: list[str] = []  # bearer tokens; empty = no auth (loopback default)
    # With auth_tokens set: may grpc.health.v1 (probes, load balancers) and reflection (grpcurl, the whole
    # descriptor set) answer without a token?
    health_without_token: bool = True
    reflection_without_token: bool = False
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_client_ca: str | None = None  # set for mutual TLS
    metrics_port: int = 0  # Prometheus endpoint; 0 = off
    log_format: str = Field("text", pattern="^(text|json)$")  # json: one object a line, with session ids
    limits: Limits = Limits()
    speech: SpeechConfig = SpeechConfig()

    @classmethod
    def load(cls, file: str | None = None, env: dict[str, str] | None = None, **overrides) -> "ServerSettings":
        data: dict = {}
        if file:
            data.update(json.loads(pathlib.Path(file).read_text()))
        env = os.environ if env is None else env
        for name, field in cls.model_fields.items():
            key = f"AVATARLAB_{name.upper()}"
            if key in env and name not in ("limits", "speech"):
                raw = env[key]
                data[name] = [t for t in raw.split(",") if t] if name == "auth_tokens" else raw
        limits = dict(data.get("limits", {}))
        for name in Limits.model_fields:
            key = f"AVATARLAB_{name.upper()}"
            if key in env:
                limits[name] = env[key]
        data["limits"] = limits
        if "AVATARLAB_AUTH_TOKENS_FILE" in env:
            data["auth_tokens"] = [t.strip() for t in pathlib.Path(env["AVATARLAB_AUTH_TOKENS_FILE"]).read_text().split() if t.strip()]
        for k, v in overrides.items():
            if v is not None:
                if k in Limits.model_fields:
                    data["limits"][k] = v
                else:
                    data[k] = v
        return cls.model_validate(data)
