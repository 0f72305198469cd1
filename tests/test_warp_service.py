"""The default warp renderer through the real service (gRPC on loopback): the portrait's own pixels,
its mouth moved by speech and closed on silence, nothing outside the face changed, and precise errors
for a face the mesh cannot find."""
from __future__ import annotations

import grpc
import numpy as np
import pytest

pytest.importorskip("mediapipe", reason="the warp renderer measures faces with mediapipe's face mesh")

from avatar_service.api import pb  # noqa: E402
from avatar_service.face.mesh import mouth_opening  # noqa: E402
from avatar_service.runtime.warp_renderer import measure_mesh  # noqa: E402
from conftest import need_data, start_server  # noqa: E402


@pytest.fixture(scope="module")
def warp_server(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("warp"), renderer="warp", face_px=256)
    yield srv
    srv.stop()


def animate(stub, avatar_id: str, audio: np.ndarray) -> tuple[np.ndarray, list]:
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    reqs = [pb.AnimateRequest(config=pb.AnimateConfig(
                avatar_id=avatar_id, audio_format=pb.AudioFormat(encoding=pb.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=16000, channels=1),
                video=pb.VideoOptions(fps=25, pixel_format=pb.PIXEL_FORMAT_RGB8, frame_mode=pb.FRAME_MODE_DELTA)))]
    reqs += [pb.AnimateRequest(audio=pb.AudioChunk(data=pcm[i:i + 6400])) for i in range(0, len(pcm), 6400)]
    reqs.append(pb.AnimateRequest(end_of_audio=pb.EndOfAudio()))
    msgs = list(stub.Animate(iter(reqs)))
    started = msgs[0].started
    base = np.frombuffer(started.base_frame.pixels, np.uint8).reshape(started.height_px, started.width_px, 3).copy()
    surface, frames, rects = base.copy(), [], []
    for m in msgs:
        if m.WhichOneof("message") == "frame":
            r = m.frame.rect
            if r.width:
                surface[r.y:r.y + r.height, r.x:r.x + r.width] = np.frombuffer(m.frame.pixels, np.uint8).reshape(r.height, r.width, 3)
            frames.append(surface.copy())
            rects.append((r.x, r.y, r.width, r.height))
    return base, frames, rects


def test_speech_moves_the_portraits_own_mouth_and_silence_closes_it(warp_server, portrait_bytes, speech_16k):
    stub = warp_server.stub()
    avatar = stub.CreateAvatar(pb.CreateAvatarRequest(portrait_image=portrait_bytes)).avatar_id
    base, frames, rects = animate(stub, avatar, speech_16k[: 3 * 16000])
    assert len(frames) == 75
    # every change stays inside one rectangle about the lower face: hair, background and suit keep their pixels
    x0, y0 = min(r[0] for r in rects if r[2]), min(r[1] for r in rects if r[2])
    x1 = max(r[0] + r[2] for r in rects if r[2])
    y1 = max(r[1] + r[3] for r in rects if r[2])
    assert (x1 - x0) * (y1 - y0) < 0.45 * base.shape[0] * base.shape[1]
    outside = np.ones(base.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert all(np.array_equal(f[outside], base[outside]) for f in frames)
    # the upper face is the portrait's own: eyes unchanged, so identity cannot drift
    ref_mesh = measure_mesh(base)
    assert y0 > ref_mesh[[33, 263], 1].max()
    speaking = [mouth_opening(measure_mesh(f)) for f in frames[::4]]
    assert np.ptp(speaking) > 0.03  # the mouth opens and closes with the line
    _, quiet, _ = animate(stub, avatar, np.zeros(16000, np.float32))
    closed = [mouth_opening(measure_mesh(f)) for f in quiet[::5]]
    # the astronaut smiles with her teeth showing: on silence her mouth closes
    assert max(closed) < mouth_opening(ref_mesh) - 0.03 and max(closed) < np.median(speaking)


def test_stylised_portraits_animate(warp_server):
    stub = warp_server.stub()
    folder = need_data("portraits", "stylized")
    picked = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:3]
    for path in picked:
        try:
            avatar = stub.CreateAvatar(pb.CreateAvatarRequest(portrait_image=path.read_bytes())).avatar_id
        except grpc.RpcError as e:  # a refusal must be a precise client error, never INTERNAL
            assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, (path.name, e.details())
            continue
        _, frames, _ = animate(stub, avatar, np.zeros(8000, np.float32))
        assert len(frames) == 13, path.name


def test_a_face_the_mesh_cannot_read_is_invalid_argument(warp_server):
    stub = warp_server.stub()
    cartoon = need_data("portraits", "stylized", "examples_johncartoon.jpg")
    with pytest.raises(grpc.RpcError) as e:
        stub.CreateAvatar(pb.CreateAvatarRequest(portrait_image=cartoon.read_bytes()))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "face mesh" in e.value.details()


def test_frame_0_goes_out_before_the_next_batch_is_prepared(warp_server, portrait_bytes, speech_16k, monkeypatch):
    """A whole line of audio at once (a TTS line, a buffered clip): frame 0 must not wait while the session
    computes the next batch's features (for the warp renderer a Whisper encoder call per 40 ms block: it
    held the first frame back ~90 ms). The session's own order of calls, not a clock, is checked."""
    from avatar_service.runtime import session as session_mod

    events = []
    windows, sent = session_mod.Session._windows, session_mod.Session._sent

    def record_windows(self, start, stop):
        events.append(("windows", start))
        return windows(self, start, stop)

    def record_sent(self, frame):
        events.append(("sent", frame.index))
        return sent(self, frame)

    monkeypatch.setattr(session_mod.Session, "_windows", record_windows)
    monkeypatch.setattr(session_mod.Session, "_sent", record_sent)
    stub = warp_server.stub()
    avatar = stub.CreateAvatar(pb.CreateAvatarRequest(portrait_image=portrait_bytes)).avatar_id
    _, frames, _ = animate(stub, avatar, speech_16k[: 4 * 16000])
    assert len(frames) == 100
    later = [i for i, (what, start) in enumerate(events) if what == "windows" and start > 0]
    assert later and events.index(("sent", 0)) < later[0], events[:6]
