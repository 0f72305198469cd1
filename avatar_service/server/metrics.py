"""Prometheus metrics of one replica, served over HTTP on `settings.metrics_port` (0 = off).

Each App owns its own registry (several servers can share a process in tests). The engine reports
through the EngineObserver hooks, the interceptor reports error statuses, and the gauges read live
values (open sessions, engine queue) at scrape time, so nothing has to remember to update them.
"""
from __future__ import annotations

import logging
from typing import Callable

import grpc
from prometheus_client import (CollectorRegistry, Counter, Gauge, Histogram, PlatformCollector, ProcessCollector,
                               start_http_server)

log = logging.getLogger(__name__)

# Frame latency on a CPU test box is tens of ms, on a loaded GPU replica up to a few hundred.
LATENCY_BUCKETS_S = (0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = r = registry or CollectorRegistry()
        ProcessCollector(registry=r)  # process_resident_memory_bytes, process_cpu_seconds_total, open fds
        PlatformCollector(registry=r)  # python_info
        self.active_sessions = Gauge("avatarlab_active_sessions", "Streaming sessions (Animate, Speak) open now.",
                                     registry=r)
        self.sessions = Counter("avatarlab_sessions", "Streaming sessions started.", registry=r)
        self.frames = Counter("avatarlab_frames_generated", "Frames the engine generated.", registry=r)
        self.frame_latency = Histogram(
            "avatarlab_frame_latency_seconds",
            "From a frame's submission to the engine until it is ready to send: queue wait, batch, model, encode.",
            buckets=LATENCY_BUCKETS_S, registry=r)
        self.batch_size = Histogram("avatarlab_batch_size", "Frames in each engine batch.", buckets=BATCH_BUCKETS,
                                    registry=r)
        self.queue_depth = Gauge("avatarlab_queue_depth", "Frames waiting for the engine.", registry=r)
        self.model_step = Histogram("avatarlab_model_step_seconds",
                                    "One engine step: a batch through the audio encoder, the sampler and the decoder.",
                                    buckets=LATENCY_BUCKETS_S, registry=r)
        self.frame_errors = Counter("avatarlab_frame_errors", "Frames whose generation failed.", registry=r)
        self.rpc_errors = Counter("avatarlab_rpc_errors", "RPCs that ended with a non-OK status, by method and code.",
                                  ["method", "code"], registry=r)
        self._http = None

    def watch(self, sessions_open: Callable[[], int], queue_depth: Callable[[], int]) -> None:
        """Gauges that read the live value at scrape time."""
        self.active_sessions.set_function(sessions_open)
        self.queue_depth.set_function(queue_depth)

    # -- EngineObserver (called on the engine's worker thread; prometheus_client is thread-safe) ------
    def on_batch(self, size: int, step_s: float, frame_latencies_s: list[float]) -> None:
        self.frames.inc(size)
        self.batch_size.observe(size)
        self.model_step.observe(step_s)
        for t in frame_latencies_s:
            self.frame_latency.observe(t)

    def on_frame_error(self) -> None:
        self.frame_errors.inc()

    # -- sessions and statuses ------------------------------------------------------------------------
    def session_started(self) -> None:
        self.sessions.inc()

    def rpc_error(self, method: str, code: grpc.StatusCode) -> None:
        self.rpc_errors.labels(method=method, code=code.name).inc()

    # -- HTTP endpoint ----------------------------------------------------------------------------------
    def serve(self, host: str, port: int) -> int:
        """Start the /metrics endpoint on a daemon thread; returns the bound port."""
        server, _ = start_http_server(port, addr=host.strip("[]"), registry=self.registry)
        self._http = server
        return server.server_port

    def close(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
