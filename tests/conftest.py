"""Shared fixtures: the real-data location, a real in-process gRPC server on loopback with the tiny
model, and real speech and portraits."""
from __future__ import annotations

import os
import pathlib

import numpy as np
import pytest

from avatar_service.server.inprocess import InProcessServer
from avatar_service.server.settings import ServerSettings

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


def start_server(tmp_path, **overrides) -> InProcessServer:
    """An in-process server on the tiny diffusion generator: seeded, batched across sessions, fast, so these
    tests can see the service's batching and seeds. The default warp renderer has its own service tests
    (test_warp_service.py) and runs in the process-level resilience tests."""
    kw = dict(listen="127.0.0.1:0", model="tiny", store_dir=str(tmp_path / "avatars"), face_px=128,
              renderer="diffusion") | overrides
    s = ServerSettings.load(env={}, **kw)
    return InProcessServer(s)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    h = start_server(tmp_path_factory.mktemp("srv"))
    yield h
    h.stop()


@pytest.fixture(scope="module")
def stub(server):
    return server.stub()


@pytest.fixture(scope="module")
def mel_server(tmp_path_factory):
    """The warp renderer, and motion-only sessions on the log-mel front end (motion_frontend=mel)."""
    srv = start_server(tmp_path_factory.mktemp("mel"), renderer="warp", face_px=128, motion_frontend="mel")
    yield srv
    srv.stop()
