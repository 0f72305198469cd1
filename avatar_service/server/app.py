"""Server assembly and lifecycle: model load and warm-up, health, reflection, graceful SIGTERM."""
from __future__ import annotations

import asyncio
import gc
import logging
import signal

import grpc
import numpy as np
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from avatar_service.api import pb, pb_grpc
from avatar_service.errors import Unavailable
from avatar_service.runtime.avatar import AvatarState
from avatar_service.runtime.models import load_backend
from avatar_service.runtime.engine import Engine
from avatar_service.server.avatars import Avatars
from avatar_service.server import blas_threads, memory
from avatar_service.server.interceptors import EdgePolicy, ServiceInterceptor
from avatar_service.server.metrics import Metrics
from avatar_service.server.servicer import AvatarServicer
from avatar_service.server.sessions import SessionSlots, WorkGate
from avatar_service.server.settings import ServerSettings
from avatar_service.store import open_store

log = logging.getLogger(__name__)
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["AvatarService"].full_name


class App:
    """Everything a running server holds. Built once; the servicer reads from it."""

    def __init__(self, settings: ServerSettings):
        self.settings = settings
        self.metrics = Metrics()  # always counted; served over HTTP only when metrics_port is set
        self.metrics_port = 0
        self.backend = load_backend(settings.model, settings.backend, settings.device, settings.dtype)
        self.engine = Engine(self.backend, settings.max_batch, settings.batch_wait_ms, observer=self.metrics)
        self.renderer = make_renderer(settings, self.engine)
        self.mouth = make_mouth(settings, self.engine, self.renderer)
        self.motion_mouth = make_motion_mouth(settings, self.mouth)
        self.store = open_store(settings.store_url or settings.store_dir, sweep=settings.store_sweep)
        self.avatars = Avatars(self.store, self.backend, settings)
        self.slots = SessionSlots(settings.limits, by_token=bool(settings.auth_tokens))
        lim = settings.limits
        self.create_gate = WorkGate("CreateAvatar", lim.max_concurrent_creates, lim.max_queued_creates,
                                    after=memory.trim)  # bodies and decoded media are garbage: give them back
        self.metrics.watch(lambda: self.slots.active, lambda: self.engine.queue_depth)
        self.speech = None
        try:
            from avatar_service.speech.service import SpeechService
            self.speech = SpeechService.create(settings.speech)
        except ImportError:  # the speech extra is not installed
            self.speech = None
        self.ready = False
        self.health = health.aio.HealthServicer() if hasattr(health, "aio") else health.HealthServicer()

    def require_ready(self) -> None:
        if not self.ready:
            raise Unavailable("the server is loading its model or shutting down; retry shortly")

    def warmup(self) -> None:
        """One real frame through the whole path before health says SERVING."""
        cfg = self.backend.config
        s = cfg.layout.crop_px
        rng = np.random.default_rng(0)
        avatar = AvatarState(textures=np.zeros((1, self.settings.face_px, self.settings.face_px, 3), np.uint8),
                             crop_to_texture=np.array([[[self.settings.face_px / s, 0, 0], [0, self.settings.face_px / s, 0]]], np.float32),
                             z_masked=rng.standard_normal((1, *cfg.latent_shape)).astype(np.float32),
                             z_ref=rng.standard_normal(cfg.latent_shape).astype(np.float32), layout=cfg.layout)
        self.engine.warmup(avatar, cfg.serving.sampling.default_steps, cfg.serving.sampling.default_guidance)
        if self.renderer.name == "warp":
            from avatar_service.runtime.warp_renderer import warmup_avatar

            self.renderer.warmup(warmup_avatar(avatar, self.settings.face_px), 0, 0.0)


def make_renderer(settings: ServerSettings, engine: Engine):
    """The renderer the settings ask for (runtime/renderer.py)."""
    from avatar_service.runtime.renderer import DiffusionRenderer, WarpRenderer

    if settings.renderer == "diffusion":
        return DiffusionRenderer(engine)
    from avatar_service.runtime.warp_renderer import MotionModel

    from avatar_service.face.warp import WarpConfig

    motion = MotionModel.default() if settings.motion_model == "default" else MotionModel.from_pretrained(settings.motion_model)
    return WarpRenderer(motion, motion.features(engine.backend.config.mel.sample_rate_hz, engine.backend.device),
                        observer=engine.observer, warp=WarpConfig(mouth_fill=settings.mouth_fill))


def make_mouth(settings: ServerSettings, engine: Engine, renderer):
    """Every session's mouth stream from its audio (runtime/mouth.py): the warp renderer's own motion
    model, so pixels and mouth agree; the same model beside the diffusion renderer."""
    from avatar_service.runtime.mouth import AudioMouth
    from avatar_service.runtime.warp_renderer import MotionModel

    motion = getattr(renderer, "motion", None)
    if motion is None:
        motion = MotionModel.default() if settings.motion_model == "default" else MotionModel.from_pretrained(settings.motion_model)
    return AudioMouth(motion, motion.features(engine.backend.config.mel.sample_rate_hz, engine.backend.device))


def make_motion_mouth(settings: ServerSettings, mouth):
    """Motion-only sessions' mouth: the motion model's log-mel student with motion_frontend 'mel' (a
    model without one fails here, at startup) or 'auto' (when it has one), else the sessions' Whisper
    mouth."""
    frontend = settings.motion_frontend
    if frontend == "whisper" or (frontend == "auto" and mouth.motion.student is None):
        return mouth
    from avatar_service.runtime.mouth import MelMouth

    return MelMouth(mouth.motion, wait_s=settings.motion_batch_wait_ms / 1000)


def _credentials(s: ServerSettings):
    if not s.tls_cert:
        return None
    read = lambda p: open(p, "rb").read()  # noqa: E731
    ca = read(s.tls_client_ca) if s.tls_client_ca else None
    return grpc.ssl_server_credentials([(read(s.tls_key), read(s.tls_cert))], root_certificates=ca,
                                       require_client_auth=ca is not None)


async def start(settings: ServerSettings) -> tuple[grpc.aio.Server, int, App]:
    """Build, bind and start; returns once the model is warm and health says SERVING."""
    memory.configure()
    blas_threads.limit(settings.blas_threads)
    app = await asyncio.to_thread(App, settings)
    lim = settings.limits
    policy = EdgePolicy.from_settings(settings, gates={f"/{SERVICE_NAME}/CreateAvatar": app.create_gate})
    server = grpc.aio.server(
        interceptors=[ServiceInterceptor(policy, on_error=app.metrics.rpc_error)],
        options=[("grpc.max_receive_message_length", lim.max_message_bytes),
                 # Compressed requests are refused (UNIMPLEMENTED) when their headers arrive: grpc would inflate
                 # a whole message before checking its size, so 1 MiB of gzip could cost a gigabyte.
                 ("grpc.compression_enabled_algorithms_bitset", 1),
                 ("grpc.max_send_message_length", max(lim.max_message_bytes, 64 * 1024 * 1024)),
                 # notice vanished clients quickly
                 ("grpc.keepalive_time_ms", int(settings.keepalive_s * 1000)),
                 ("grpc.keepalive_timeout_ms", int(settings.keepalive_timeout_s * 1000)),
                 # keep probing a connection that carries no data (a session waiting for audio); grpc's
                 # defaults would space such pings minutes apart
                 ("grpc.http2.max_pings_without_data", 0),
                 ("grpc.http2.min_time_between_pings_ms", int(settings.keepalive_s * 1000)),
                 ("grpc.http2.ping_timeout_ms", int(settings.keepalive_timeout_s * 1000)),
                 ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
                 # a client that pings more often than that gets GOAWAY after two strikes (ping floods)
                 ("grpc.http2.max_ping_strikes", 2),
                 ("grpc.keepalive_permit_without_calls", 1)])
    pb_grpc.add_AvatarServiceServicer_to_server(AvatarServicer(app), server)
    health_pb2_grpc.add_HealthServicer_to_server(app.health, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME), server)
    creds = _credentials(settings)
    port = server.add_secure_port(settings.listen, creds) if creds else server.add_insecure_port(settings.listen)
    if port == 0:
        raise OSError(f"could not listen on {settings.listen}")
    await _set_health(app, health_pb2.HealthCheckResponse.NOT_SERVING)
    if settings.metrics_port:
        app.metrics_port = app.metrics.serve(settings.listen.rsplit(":", 1)[0], settings.metrics_port)
    await server.start()
    await asyncio.to_thread(app.warmup)
    app.ready = True
    await _set_health(app, health_pb2.HealthCheckResponse.SERVING)
    log.info("serving %s (%s on %s) at %s", app.avatars.model_id, app.backend.name, app.backend.device,
             settings.listen.rsplit(":", 1)[0] + f":{port}")
    return server, port, app


async def _set_health(app: App, status) -> None:
    for name in ("", SERVICE_NAME):
        r = app.health.set(name, status)
        if asyncio.iscoroutine(r):
            await r


async def stop(server: grpc.aio.Server, app: App, grace_s: float) -> None:
    """Stop accepting, let in-flight streams finish within the grace period, then free the model."""
    app.ready = False
    await _set_health(app, health_pb2.HealthCheckResponse.NOT_SERVING)
    await server.stop(grace_s)
    if app.speech is not None:
        app.speech.close()
    await asyncio.to_thread(app.engine.close)
    app.metrics.close()
    if hasattr(app.store, "close"):
        app.store.close()


async def serve_forever(settings: ServerSettings) -> None:
    server, port, app = await start(settings)
    # Everything loaded so far (torch, the models: ~500k objects) lives as long as the process. Frozen,
    # the collector stops walking it: each full collection was a ~0.25 s pause of every stream.
    gc.collect()
    gc.freeze()
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    if settings.metrics_port:
        print(f"avatarlab: metrics on port {app.metrics_port}", flush=True)
    print(f"avatarlab: listening on port {port}", flush=True)
    wait = asyncio.create_task(server.wait_for_termination())
    await asyncio.wait([wait, asyncio.create_task(done.wait())], return_when=asyncio.FIRST_COMPLETED)
    log.info("shutting down: draining streams for up to %.0f s", settings.grace_s)
    await stop(server, app, settings.grace_s)
    # Drained and stopped: a repeated SIGTERM during interpreter teardown must not turn this clean exit
    # into death by signal.
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(sig)
        signal.signal(sig, signal.SIG_IGN)
