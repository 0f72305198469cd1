"""`avatarlab serve --processes N`: N copies of the server listening on one port (SO_REUSEPORT, which gRPC
sets on Linux), as grpc's own multiprocessing example runs a Python server on several cores.

Why: the Python server is bound by one core's worth of Python (the event loop and the mouth's batch thread
share a GIL). Motion-only sessions cost a few ms of CPU a stream-second each, so one process stops near 150
real-time streams on the 2-core machine while the second core has room (docs/motion.md).

What is per process: the kernel spreads connections (not calls) across the processes, so one client
channel's sessions all land in one of them; session limits, the avatar cache and metrics are each
process's own (process i serves metrics on metrics_port + i). Avatars live in the shared store, so any
process opens an avatar another created. The first process owns the terminal: SIGTERM or Ctrl-C to it
drains every process.
"""
from __future__ import annotations

import asyncio
import logging
import multiprocessing

from avatar_service.server.settings import ServerSettings


def _child(settings_json: str) -> None:
    import signal

    from avatar_service.cli import LOG_FORMAT
    from avatar_service.server import logs
    from avatar_service.server.app import serve_forever

    settings = ServerSettings.model_validate_json(settings_json)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)  # as the first process's `avatarlab` set it
    logs.configure(settings.log_format)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the first process drains us
    asyncio.run(serve_forever(settings))


def serve_processes(settings: ServerSettings) -> None:
    """Start the other processes, serve in this one until SIGTERM, then drain them all."""
    from avatar_service.server.app import serve_forever

    if settings.listen.rsplit(":", 1)[-1] == "0":
        raise ValueError("--processes needs a fixed port (processes share it): not port 0")
    if not settings.store_url and settings.store_sweep:
        from avatar_service.store import LocalAvatarStore

        LocalAvatarStore(settings.store_dir)  # sweeps crash leftovers once, before any process can write
    settings = settings.model_copy(update={"store_sweep": False})
    ctx = multiprocessing.get_context("spawn")  # gRPC must not be forked once it has started
    children = []
    for i in range(1, settings.processes):
        own = settings.model_copy(update={"processes": 1,
                                          "metrics_port": settings.metrics_port + i if settings.metrics_port else 0})
        p = ctx.Process(target=_child, args=(own.model_dump_json(),), name=f"avatarlab-serve-{i}", daemon=False)
        p.start()
        children.append(p)
    try:
        asyncio.run(serve_forever(settings.model_copy(update={"processes": 1})))
    finally:
        for p in children:  # SIGTERM: each drains its own streams for grace_s
            p.terminate()
        for p in children:
            p.join(settings.grace_s + 10)
            if p.is_alive():
                p.kill()
