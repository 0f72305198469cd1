"""Shared fixtures: the real-data location, a real in-process gRPC server on loopback with the tiny
model, and real speech and portraits."""
from __future__ import annotations

import asyncio
import os
import pathlib
import threading

import grpc
import numpy as np
import pytest

from avatar_service.api import pb_grpc

REPO = pathlib.Path(__file__).resolve().parents[1]
ASSETS = REPO / "avatar_service" / "assets"
DATA = pathlib.Path(os.environ.get("AVATARLAB_DATA", REPO.parent / "shared" / "data"))


def need_data(*parts: str) -> pathlib.Path:
    """Path under the shared data folder, or skip the test saying what is missing."""
    p = DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real data {p} is absent (set AVATARLAB_DATA to the shared data folder)")
    return p


@pytest.fixture(scope="session")
def speech_16k() -> np.ndarray:
    """A real spoken line (bundled, synthesized with a CC0 neural voice), 16 kHz mono float32."""
    from avatar_service.media import read_audio
    return read_audio(ASSETS / "demo_line.wav", 16000)


@pytest.fixture(scope="session")
def portrait_bytes() -> bytes:
    return (ASSETS / "astronaut.png").read_bytes()


class ServerHandle:
    """A real server on a loopback port, run in its own thread and event loop."""

    def __init__(self, settings):
        from avatar_service.server.app import start
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.error = None

        def run():
            asyncio.set_event_loop(self.loop)
            try:
                self.server, self.port, self.app = self.loop.run_until_complete(start(settings))
            except BaseException as e:
                self.error = e
            ready.set()
            if self.error is None:
                self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        ready.wait(120)
        if self.error:
            raise self.error
        self.target = f"127.0.0.1:{self.port}"

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(self.target, options=[("grpc.max_receive_message_length", 64 << 20)])

    def stub(self):
        return pb_grpc.AvatarServiceStub(self.channel())

    def stop(self, grace: float = 0.5):
        from avatar_service.server.app import stop
        asyncio.run_coroutine_threadsafe(stop(self.server, self.app, grace), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def start_server(tmp_path, **overrides) -> ServerHandle:
    from avatar_service.server.settings import ServerSettings
    s = ServerSettings.load(env={}, listen="127.0.0.1:0", model="tiny", store_dir=str(tmp_path / "avatars"), face_px=128,
                            **overrides)
    return ServerHandle(s)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    h = start_server(tmp_path_factory.mktemp("srv"))
    yield h
    h.stop()


@pytest.fixture(scope="module")
def stub(server):
    return server.stub()
