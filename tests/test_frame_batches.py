"""Frame batches over real gRPC (AnimateConfig.max_frames_per_message): frames that are ready together come
in one AnimateResponse.frames, every frame once and in order, with the same mouth as one frame a message;
sessions that do not ask still get one `frame` a message; out-of-range values are INVALID_ARGUMENT."""
from __future__ import annotations

import math

import grpc
import numpy as np
import pytest

from avatar_service.api import pb
from avatar_service.responses import frames, items, items_of
SMALL = pb.VideoOptions(fps=30, width_px=64, height_px=64, pixel_format=pb.PIXEL_FORMAT_RGB8)


@pytest.fixture(scope="module")
def server(mel_server):
    return mel_server


@pytest.fixture(scope="module")
def avatar(server, portrait_bytes):
    return server.stub().CreateAvatar(pb.CreateAvatarRequest(portrait_image=portrait_bytes)).avatar_id


def animate(stub, avatar_id: str, audio: np.ndarray, per_message: int = 0, motion_only: bool = True,
            chunk_samples: int = 3200) -> list:
    """All responses of one session; audio in 200 ms chunks (the default), sent as fast as gRPC takes them."""
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    reqs = [pb.AnimateRequest(config=pb.AnimateConfig(
        avatar_id=avatar_id, motion_only=motion_only, max_frames_per_message=per_message, video=SMALL,
        audio_format=pb.AudioFormat(encoding=pb.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=16000, channels=1)))]
    reqs += [pb.AnimateRequest(audio=pb.AudioChunk(data=pcm[i:i + chunk_samples].tobytes()))
             for i in range(0, len(pcm), chunk_samples)]
    reqs.append(pb.AnimateRequest(end_of_audio=pb.EndOfAudio()))
    return list(stub.Animate(iter(reqs)))


def kinds(msgs: list) -> list[str]:
    return [m.WhichOneof("message") for m in msgs]


def test_items_unpack_a_batch_into_its_frames_in_order():
    batch = pb.AnimateResponse(frames=pb.FrameBatch(frames=[pb.VideoFrame(index=i, pts_ms=40 * i) for i in (3, 4, 5)]))
    assert [(k, f.index) for k, f in items_of(batch)] == [("frame", 3), ("frame", 4), ("frame", 5)]
    single = pb.SpeakResponse(frame=pb.VideoFrame(index=7))
    assert [(k, f.index) for k, f in items_of(single)] == [("frame", 7)]
    audio = pb.SpeakResponse(audio=pb.SpeechAudio(pts_ms=9))
    assert [(k, a.pts_ms) for k, a in items_of(audio)] == [("audio", 9)]
    assert items_of(pb.AnimateResponse()) == [(None, None)]
    back = pb.AnimateResponse.FromString(batch.SerializeToString())
    assert back == batch and [f.index for f in frames([single, back])] == [7, 3, 4, 5]


def test_motion_only_batches_carry_every_frame_once_in_order_with_the_unbatched_mouth(server, avatar, speech_16k):
    audio = speech_16k[: 3 * 16000]
    stub = server.stub()
    batched = animate(stub, avatar, audio, per_message=6)
    plain = animate(stub, avatar, audio)
    n = math.ceil(len(audio) / 16000 * 30)

    assert kinds(batched)[0] == "started" and kinds(batched)[-1] == "ended"
    assert batched[0].started.motion_only
    body = batched[1:-1]
    assert set(kinds(body)) <= {"frame", "frames"} and "frames" in kinds(body)
    sizes = [len(m.frames.frames) for m in body if m.WhichOneof("message") == "frames"]
    assert all(2 <= s <= 6 for s in sizes), sizes  # a lone frame comes as `frame`
    got = frames(batched)
    assert [f.index for f in got] == list(range(n))  # contiguous: none lost, none repeated
    assert [f.pts_ms for f in got] == [round(i * 1000 / 30) for i in range(n)]
    assert len(body) < n  # fewer messages than frames
    assert batched[-1].ended.stats.frames_sent == n

    # without asking: one `frame` a message, as before batching existed
    assert set(kinds(plain[1:-1])) == {"frame"} and len(plain) == n + 2
    want = frames(plain)
    np.testing.assert_allclose([f.mouth.visemes for f in got], [f.mouth.visemes for f in want], atol=1e-5)
    np.testing.assert_allclose([f.mouth.blendshapes for f in got], [f.mouth.blendshapes for f in want], atol=1e-5)


def test_one_frame_a_message_is_what_0_and_1_mean(server, avatar, speech_16k):
    msgs = animate(server.stub(), avatar, speech_16k[: 16000], per_message=1)
    assert set(kinds(msgs[1:-1])) == {"frame"} and len(msgs) == 30 + 2


def test_image_sessions_may_batch_too(server, avatar, speech_16k):
    """An image session's frames come in batches where several are encoded together: the same frames."""
    audio = speech_16k[: 16000]
    batched = animate(server.stub(), avatar, audio, per_message=8, motion_only=False, chunk_samples=16000)
    got = frames(batched)
    assert [f.index for f in got] == list(range(30)) and all(f.pixels for f in got)
    assert all(len(m.frames.frames) <= 8 for m in batched if m.WhichOneof("message") == "frames")
    assert sum(1 for k, _ in items(batched) if k == "frame") == 30


@pytest.mark.parametrize("value", [-1, 65, 1 << 30])
def test_out_of_range_max_frames_per_message_is_invalid_argument(server, avatar, speech_16k, value):
    with pytest.raises(grpc.RpcError) as err:
        animate(server.stub(), avatar, speech_16k[: 3200], per_message=value)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "max_frames_per_message" in err.value.details() and str(value) in err.value.details()


def test_the_server_runs_numpys_openblas_on_one_thread(server):
    """Idle OpenBLAS workers spin between the mouth thread's small products (server/blas_threads.py)."""
    from avatar_service.server import blas_threads

    counts = blas_threads.threads()
    if not counts:
        pytest.skip("no OpenBLAS is loaded in this process (numpy built against another BLAS)")
    assert set(counts.values()) == {1}, counts  # the in-process server's start set them (blas_threads=1)
