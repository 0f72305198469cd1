"""A real server on a loopback port inside this process (its own thread and event loop), for
`avatarlab render`, benchmarks and tests."""
from __future__ import annotations

import asyncio
import threading

import grpc

from avatar_service.api import pb_grpc
from avatar_service.server.settings import ServerSettings


class InProcessServer:
    def __init__(self, settings: ServerSettings):
        from avatar_service.server.app import start

        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.error: BaseException | None = None
        ready = threading.Event()

        def run():
            asyncio.set_event_loop(self.loop)
            try:
                self.server, self.port, self.app = self.loop.run_until_complete(start(settings))
            except BaseException as e:  # re-raised in the caller's thread below
                self.error = e
            ready.set()
            if self.error is None:
                self.loop.run_forever()

        self.thread = threading.Thread(target=run, name="avatarlab-inprocess", daemon=True)
        self.thread.start()
        ready.wait()
        if self.error is not None:
            raise self.error
        self.target = f"127.0.0.1:{self.port}"

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(self.target, options=[("grpc.max_receive_message_length", 64 << 20)])

    def stub(self) -> pb_grpc.AvatarServiceStub:
        return pb_grpc.AvatarServiceStub(self.channel())

    def stop(self, grace_s: float = 0.5) -> None:
        from avatar_service.server.app import stop

        asyncio.run_coroutine_threadsafe(stop(self.server, self.app, grace_s), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
