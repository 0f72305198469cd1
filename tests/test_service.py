"""The service end to end over real gRPC on loopback, with the tiny model, real speech and a real portrait."""
from __future__ import annotations

import io
import math
import queue
import threading
import time

import grpc
import numpy as np
import pytest
from PIL import Image

from avatar_service.api import pb
from avatar_service.client import Surface
from conftest import start_server

FPS = 25


def config(avatar_id, rate=16000, encoding=pb.AUDIO_ENCODING_PCM_S16LE, channels=1, **video):
    video.setdefault("pixel_format", pb.PIXEL_FORMAT_RGB8)
    return pb.AnimateRequest(config=pb.AnimateConfig(
        avatar_id=avatar_id, audio_format=pb.AudioFormat(encoding=encoding, sample_rate_hz=rate, channels=channels),
        video=pb.VideoOptions(fps=FPS, **video), generation=pb.GenerationOptions(seed=7)))


def pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


def requests_for(avatar_id, audio, chunk_bytes=3200, **video):
    yield config(avatar_id, **video)
    data = pcm16(audio)
    for i in range(0, len(data), chunk_bytes):
        yield pb.AnimateRequest(audio=pb.AudioChunk(data=data[i:i + chunk_bytes]))
    yield pb.AnimateRequest(end_of_audio=pb.EndOfAudio())


def run_session(stub, avatar_id, audio, **video):
    msgs = list(stub.Animate(requests_for(avatar_id, audio, **video)))
    assert msgs[0].WhichOneof("message") == "started"
    assert msgs[-1].WhichOneof("message") == "ended"
    return msgs[0].started, [m.frame for m in msgs[1:-1]], msgs[-1].ended.stats


@pytest.fixture(scope="module")
def avatar(stub, portrait_bytes):
    return stub.CreateAvatar(pb.CreateAvatarRequest(portrait_image=portrait_bytes, display_name="Astronaut"))


def test_health_and_reflection(server):
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    ch = server.channel()
    resp = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service="avatarlab.v1.AvatarService"))
    assert resp.status == health_pb2.HealthCheckResponse.SERVING
    refl = reflection_pb2_grpc.ServerReflectionStub(ch)
    out = next(refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
    names = {s.name for s in out.list_services_response.service}
    assert {"avatarlab.v1.AvatarService", "grpc.health.v1.Health"} <= names


def test_avatar_crud(stub, avatar):
    assert avatar.avatar_id and avatar.display_name == "Astronaut"
    assert avatar.source_kind == pb.AVATAR_SOURCE_KIND_PORTRAIT and avatar.pose_frame_count == 1
    assert stub.GetAvatar(pb.GetAvatarRequest(avatar_id=avatar.avatar_id)) == avatar
    ids = [a.avatar_id for a in stub.ListAvatars(pb.ListAvatarsRequest()).avatars]
    assert avatar.avatar_id in ids
    info = stub.GetServerInfo(pb.GetServerInfoRequest())
    assert info.api_version == "avatarlab.v1" and info.model_id.startswith("avatarlab-face-tiny")
    assert info.limits.max_concurrent_sessions > 0


def test_delete_avatar(stub, portrait_bytes):
    a = stub.CreateAvatar(pb.CreateAvatarRequest(portrait_image=portrait_bytes))
    stub.DeleteAvatar(pb.DeleteAvatarRequest(avatar_id=a.avatar_id))
    with pytest.raises(grpc.RpcError) as e:
        stub.GetAvatar(pb.GetAvatarRequest(avatar_id=a.avatar_id))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_animate_three_seconds_of_speech(stub, avatar, speech_16k):
    audio = speech_16k[: 3 * 16000]
    started, frames, stats = run_session(stub, avatar.avatar_id, audio, width_px=96, height_px=80)
    assert (started.fps, started.width_px, started.height_px) == (FPS, 96, 80)
    assert len(frames) == math.ceil(3 * FPS) == stats.frames_sent
    assert [f.index for f in frames] == list(range(len(frames)))
    pts = [f.pts_ms for f in frames]
    assert pts == sorted(pts) and pts[0] == 0 and pts[-1] == round((len(frames) - 1) * 1000 / FPS)
    for f in frames:
        assert (f.rect.width, f.rect.height) == (96, 80) and len(f.pixels) == 96 * 80 * 3
    images = [np.frombuffer(f.pixels, np.uint8).reshape(80, 96, 3) for f in frames]
    base = np.frombuffer(started.base_frame.pixels, np.uint8).reshape(80, 96, 3)
    # The mouth area moves with the audio; the rest of the face stays the idle portrait.
    changing = np.mean([np.abs(a.astype(int) - b).mean() for a, b in zip(images, images[1:])])
    assert changing > 0.01
    assert np.abs(images[10].astype(int) - base)[:20].max() <= 1  # top rows (hair, forehead) untouched
    assert stats.audio_received_ms == 3000


def test_non_integer_duration_rounds_frames_up(stub, avatar, speech_16k):
    audio = speech_16k[: int(1.01 * 16000)]
    _, frames, _ = run_session(stub, avatar.avatar_id, audio)
    assert len(frames) == math.ceil(1.01 * FPS)


def test_delta_frames_rebuild_full_frames_exactly(tmp_path, portrait_bytes, speech_16k):
    # Frames computed one at a time (max_batch=1). The audio encoder still batches Whisper blocks by when
    # they arrive, and its int8 kernels may then differ by a grey level in a few pixels between the two
    # sessions; a delta-encoding fault (a wrong or missed rectangle) moves whole regions.
    h = start_server(tmp_path, max_batch=1)
    try:
        stub = h.stub()
        a = stub.CreateAvatar(pb.CreateAvatarRequest(portrait_image=portrait_bytes))
        audio = speech_16k[16000: 16000 * 3]
        _, full, _ = run_session(stub, a.avatar_id, audio, frame_mode=pb.FRAME_MODE_FULL)
        started, delta, stats = run_session(stub, a.avatar_id, audio, frame_mode=pb.FRAME_MODE_DELTA)
    finally:
        h.stop()
    surface = Surface(started)
    sizes = []
    for f_full, f_delta in zip(full, delta):
        surface.apply(f_delta)
        sizes.append(len(f_delta.pixels))
        diff = np.abs(surface.image.astype(int) - np.frombuffer(f_full.pixels, np.uint8).reshape(surface.image.shape))
        assert diff.max() <= 3 and diff.mean() < 0.05
    assert len(full) == len(delta)
    assert np.mean(sizes) < 0.6 * len(full[0].pixels)  # deltas carry only the mouth area


def test_same_seed_same_frames(stub, avatar, speech_16k):
    """Same seed, same frames. Bit-identical within the same batching; when concurrent sessions change how
    frames are batched, float reassociation may move a few pixels by a grey level or two, never more."""
    audio = speech_16k[: 16000]

    def images(seed):
        reqs = list(requests_for(avatar.avatar_id, audio))
        reqs[0].config.generation.seed = seed
        msgs = list(stub.Animate(iter(reqs)))
        return np.stack([np.frombuffer(m.frame.pixels, np.uint8) for m in msgs if m.WhichOneof("message") == "frame"]).astype(int)
    a, b, c = images(7), images(7), images(8)
    assert np.abs(a - b).max() <= 3 and np.abs(a - b).mean() < 0.05
    assert np.abs(a - c).mean() > 10 * max(np.abs(a - b).mean(), 0.01)


def test_jpeg_and_rgba_formats(stub, avatar, speech_16k):
    audio = speech_16k[: 8000]
    _, frames, _ = run_session(stub, avatar.avatar_id, audio, pixel_format=pb.PIXEL_FORMAT_JPEG, jpeg_quality=70)
    img = Image.open(io.BytesIO(frames[0].pixels))
    assert img.format == "JPEG" and img.size == (128, 128)
    _, frames, _ = run_session(stub, avatar.avatar_id, audio, pixel_format=pb.PIXEL_FORMAT_RGBA8)
    px = np.frombuffer(frames[0].pixels, np.uint8).reshape(128, 128, 4)
    assert (px[..., 3] == 255).all()


def test_resampled_stereo_float_input(stub, avatar, speech_16k):
    import soxr
    mono = soxr.resample(speech_16k[:32000], 16000, 44100).astype(np.float32)
    stereo = np.stack([mono, mono], axis=1).astype("<f4").tobytes()

    def reqs():
        yield config(avatar.avatar_id, rate=44100, encoding=pb.AUDIO_ENCODING_PCM_F32LE, channels=2)
        for i in range(0, len(stereo), 8 * 1000):
            yield pb.AnimateRequest(audio=pb.AudioChunk(data=stereo[i:i + 8000]))
    msgs = list(stub.Animate(reqs()))  # half-close ends the audio
    frames = [m for m in msgs if m.WhichOneof("message") == "frame"]
    assert len(frames) == math.ceil(len(mono) / 44100 * FPS)


def test_frames_stream_before_end_of_audio(stub, avatar, speech_16k):
    """Frames come as soon as their audio (plus look-ahead) is in, not at end of audio."""
    got_frame = threading.Event()
    sent_end_after_frame = []

    def reqs():
        yield config(avatar.avatar_id)
        yield pb.AnimateRequest(audio=pb.AudioChunk(data=pcm16(speech_16k[:16000])))
        got_frame.wait(30)
        sent_end_after_frame.append(got_frame.is_set())
        yield pb.AnimateRequest(audio=pb.AudioChunk(data=pcm16(speech_16k[16000:24000])))
        yield pb.AnimateRequest(end_of_audio=pb.EndOfAudio())

    n = 0
    for m in stub.Animate(reqs()):
        if m.WhichOneof("message") == "frame":
            n += 1
            got_frame.set()
    assert sent_end_after_frame == [True]
    assert n == math.ceil(1.5 * FPS)


def test_concurrent_sessions(server, avatar, speech_16k):
    results = queue.Queue()

    def one(seconds):
        try:
            _, frames, _ = run_session(server.stub(), avatar.avatar_id, speech_16k[: int(seconds * 16000)])
            results.put((seconds, len(frames)))
        except Exception as e:  # surfaced below
            results.put((seconds, e))
    threads = [threading.Thread(target=one, args=(s,)) for s in (1.0, 1.5, 2.0, 2.5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    got = sorted(results.queue)
    assert got == [(s, math.ceil(s * FPS)) for s in (1.0, 1.5, 2.0, 2.5)]
    assert max(server.app.engine.stats.batch_sizes) > 1  # sessions really shared batches


def test_cancel_frees_the_session(tmp_path, portrait_bytes, speech_16k):
    h = start_server(tmp_path, max_concurrent_sessions=1)
    try:
        stub = h.stub()
        a = stub.CreateAvatar(pb.CreateAvatarRequest(portrait_image=portrait_bytes))
        hold = threading.Event()

        def slow():
            yield config(a.avatar_id)
            yield pb.AnimateRequest(audio=pb.AudioChunk(data=pcm16(speech_16k[:16000])))
            hold.wait(30)
        call = stub.Animate(slow())
        for m in call:
            if m.WhichOneof("message") == "frame":
                break
        with pytest.raises(grpc.RpcError) as e:  # the one slot is taken
            run_session(stub, a.avatar_id, speech_16k[:8000])
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        call.cancel()
        hold.set()
        deadline = time.monotonic() + 1.0
        while h.app.slots.active and time.monotonic() < deadline:
            time.sleep(0.02)
        assert h.app.slots.active == 0
        _, frames, _ = run_session(stub, a.avatar_id, speech_16k[:8000])
        assert len(frames) == math.ceil(0.5 * FPS)
    finally:
        h.stop()


def _status(fn):
    with pytest.raises(grpc.RpcError) as e:
        fn()
    return e.value.code(), e.value.details()


def _animate(stub, reqs):
    return list(stub.Animate(iter(reqs)))


@pytest.mark.parametrize("make,code,words", [
    (lambda a: [config(a, encoding=pb.AUDIO_ENCODING_UNSPECIFIED)], grpc.StatusCode.INVALID_ARGUMENT, "encoding"),
    (lambda a: [config(a, rate=1000)], grpc.StatusCode.INVALID_ARGUMENT, "sample_rate_hz"),
    (lambda a: [config(a, channels=6)], grpc.StatusCode.INVALID_ARGUMENT, "channels"),
    (lambda a: [config(a), pb.AnimateRequest(audio=pb.AudioChunk(data=b"\x00\x01\x02"))],
     grpc.StatusCode.INVALID_ARGUMENT, "whole number"),
    (lambda a: [pb.AnimateRequest(audio=pb.AudioChunk(data=b"\x00\x00"))], grpc.StatusCode.INVALID_ARGUMENT, "first"),
    (lambda a: [config(a), config(a)], grpc.StatusCode.INVALID_ARGUMENT, "twice"),
    (lambda a: [config("no-such-avatar")], grpc.StatusCode.NOT_FOUND, "no-such-avatar"),
    (lambda a: [config(a, width_px=5000)], grpc.StatusCode.INVALID_ARGUMENT, "size"),
    (lambda a: [config(a).__class__(config=pb.AnimateConfig(
        avatar_id=a, audio_format=pb.AudioFormat(encoding=1, sample_rate_hz=16000), video=pb.VideoOptions(fps=1000)))],
     grpc.StatusCode.INVALID_ARGUMENT, "fps"),
    (lambda a: [], grpc.StatusCode.INVALID_ARGUMENT, "config"),
])
def test_bad_animate_input(stub, avatar, make, code, words):
    got, details = _status(lambda: _animate(stub, make(avatar.avatar_id)))
    assert got == code and words in details


def _png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def test_bad_portraits(stub, portrait_bytes):
    face = np.asarray(Image.open(io.BytesIO(portrait_bytes)).convert("RGB"))
    cases = [
        (b"", "set portrait_image"),
        (b"\x89PNG\r\n\x1a\n" + b"garbage" * 50, "could not be decoded"),
        (portrait_bytes[: len(portrait_bytes) // 3], "could not be decoded"),
        (_png(np.full((256, 256, 3), 90, np.uint8)), "no face"),
        (_png(np.concatenate([face, face], axis=1)), "faces found"),
    ]
    for data, words in cases:
        code, details = _status(lambda: stub.CreateAvatar(pb.CreateAvatarRequest(portrait_image=data)))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and words in details, (words, details)


def test_huge_portrait_is_refused(tmp_path, portrait_bytes):
    h = start_server(tmp_path, max_portrait_pixels=100_000)
    try:
        code, details = _status(lambda: h.stub().CreateAvatar(pb.CreateAvatarRequest(portrait_image=portrait_bytes)))
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "limit" in details
    finally:
        h.stop()


def test_restart_keeps_avatars(tmp_path, portrait_bytes, speech_16k):
    h = start_server(tmp_path)
    a = h.stub().CreateAvatar(pb.CreateAvatarRequest(portrait_image=portrait_bytes, display_name="kept"))
    h.stop()
    h2 = start_server(tmp_path)
    try:
        stub = h2.stub()
        assert stub.GetAvatar(pb.GetAvatarRequest(avatar_id=a.avatar_id)).display_name == "kept"
        _, frames, _ = run_session(stub, a.avatar_id, speech_16k[:8000])
        assert len(frames) == math.ceil(0.5 * FPS)
    finally:
        h2.stop()


def test_idle_video_avatar_ping_pongs(stub, speech_16k, tmp_path):
    """An avatar from a short idle video keeps its head motion; the loop plays back and forth."""
    from conftest import need_data
    from avatar_service.media import decode_video, write_mp4

    src = need_data("talking", "id02_pose_source2.mp4")
    frames = decode_video(src, max_seconds=60)[:20]
    clip = tmp_path / "idle.mp4"
    write_mp4(clip, frames, 25)
    a = stub.CreateAvatar(pb.CreateAvatarRequest(idle_video=clip.read_bytes()))
    assert a.source_kind == pb.AVATAR_SOURCE_KIND_IDLE_VIDEO and a.pose_frame_count == 20
    _, out, _ = run_session(stub, a.avatar_id, speech_16k[: 2 * 16000])
    assert len(out) == 50
    imgs = [np.frombuffer(f.pixels, np.uint8).reshape(128, 128, 3).astype(int) for f in out]
    # Ping-pong: frame 19 is the turning point, so frames 18 and 20 show the same pose (top rows, outside the mouth).
    assert np.abs(imgs[18][:40] - imgs[20][:40]).mean() < np.abs(imgs[0][:40] - imgs[19][:40]).mean()
