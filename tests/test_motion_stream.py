"""The mouth stream over real gRPC: every frame carries its visemes and ARKit blendshapes on the audio
clock (both renderers), a motion-only session sends one mouth block a frame and no pixels, silence is a
closed mouth and `sil`, speech moves the jaw."""
from __future__ import annotations

import math

import numpy as np
import pytest

from avatar_service.api import pb
from avatar_service.face.rig import BLENDSHAPE_NAMES, VISEME_NAMES
from conftest import start_server

JAW, SIL = BLENDSHAPE_NAMES.index("jawOpen"), VISEME_NAMES.index("sil")


@pytest.fixture(scope="module")
def warp_server(tmp_path_factory):
    # motion-only sessions on the Whisper front end here, as image sessions' mouth (the mel front end below)
    srv = start_server(tmp_path_factory.mktemp("mouth"), renderer="warp", face_px=128, motion_frontend="whisper")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def avatar(warp_server, portrait_bytes):
    return warp_server.stub().CreateAvatar(pb.CreateAvatarRequest(portrait_image=portrait_bytes)).avatar_id


def line_with_pauses(speech_16k: np.ndarray) -> np.ndarray:
    """1 s of silence, 3 s of speech, 1 s of silence."""
    pause = np.zeros(16000, np.float32)
    return np.concatenate([pause, speech_16k[: 3 * 16000], pause])


def animate(stub, avatar_id: str, audio: np.ndarray, fps: int = 25, motion_only: bool = False) -> list:
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    reqs = [pb.AnimateRequest(config=pb.AnimateConfig(
        avatar_id=avatar_id, motion_only=motion_only,
        audio_format=pb.AudioFormat(encoding=pb.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=16000, channels=1),
        video=pb.VideoOptions(fps=fps, width_px=64, height_px=64, pixel_format=pb.PIXEL_FORMAT_RGB8)))]
    reqs += [pb.AnimateRequest(audio=pb.AudioChunk(data=pcm[i:i + 3200])) for i in range(0, len(pcm), 3200)]
    reqs.append(pb.AnimateRequest(end_of_audio=pb.EndOfAudio()))
    return list(stub.Animate(iter(reqs)))


def mouths(frames) -> tuple[np.ndarray, np.ndarray]:
    return (np.array([f.mouth.visemes for f in frames], np.float32),
            np.array([f.mouth.blendshapes for f in frames], np.float32))


def check_blocks(visemes: np.ndarray, blendshapes: np.ndarray) -> None:
    assert visemes.shape[1] == len(VISEME_NAMES) and blendshapes.shape[1] == len(BLENDSHAPE_NAMES)
    assert np.allclose(visemes.sum(1), 1.0, atol=1e-4) and (visemes >= 0).all()
    assert (blendshapes >= 0).all() and (blendshapes <= 1).all()


def test_the_mouth_block_round_trips_the_proto():
    frame = pb.VideoFrame(index=3, pts_ms=120, mouth=pb.MouthMotion(visemes=[0.25] * 4, blendshapes=[0.5, 0.0, 1.0]))
    back = pb.VideoFrame.FromString(frame.SerializeToString())
    assert list(back.mouth.visemes) == [0.25] * 4 and list(back.mouth.blendshapes) == [0.5, 0.0, 1.0]
    assert back == frame


def test_motion_only_session_sends_one_block_a_frame_at_the_requested_fps_and_no_pixels(warp_server, avatar, speech_16k):
    audio = line_with_pauses(speech_16k)
    check_motion_only(animate(warp_server.stub(), avatar, audio, fps=30, motion_only=True), audio)


def test_motion_only_session_on_the_mel_front_end(mel_server, portrait_bytes, speech_16k):
    """The log-mel student (motion_frontend=mel): the same stream, no Whisper, within 120 ms look-ahead,
    and frame for frame what the student reads offline from the audio the server received."""
    from avatar_service.model.motion import softmax
    from avatar_service.runtime.mouth import gated_visemes
    from avatar_service.runtime.warp_renderer import MotionModel

    stub = mel_server.stub()
    avatar_id = stub.CreateAvatar(pb.CreateAvatarRequest(portrait_image=portrait_bytes)).avatar_id
    audio = line_with_pauses(speech_16k)
    msgs = animate(stub, avatar_id, audio, fps=30, motion_only=True)
    check_motion_only(msgs, audio)
    assert msgs[0].started.lookahead_ms <= 130  # the student's 109 ms at 30 fps, + the resampler's 10 ms margin
    model = MotionModel.default()
    student, received = model.student, (np.clip(audio, -1, 1) * 32767).astype("<i2").astype(np.float32) / 32768  # as sent
    n = len(msgs) - 2
    motion, logits = student.outputs(student.clip_windows(received, n, 30))
    gate = student.gate(received, 0, n, 30)
    visemes, shapes = mouths([m.frame for m in msgs[1:-1]])
    np.testing.assert_allclose(shapes, model.rig.blendshapes(motion * gate[:, None]), atol=1e-4)
    np.testing.assert_allclose(visemes, gated_visemes(softmax(logits), gate), atol=1e-4)


def check_motion_only(msgs: list, audio: np.ndarray) -> None:
    """One mouth block a frame at 30 fps with monotonic pts, no pixels; silence closed and `sil`, speech
    moving the jaw."""
    started = msgs[0].started
    assert started.motion_only and started.fps == 30
    assert list(started.viseme_names) == list(VISEME_NAMES) and list(started.blendshape_names) == list(BLENDSHAPE_NAMES)
    assert started.base_frame.pixels == b"" and started.base_frame.rect.width == 0
    frames = [m.frame for m in msgs if m.WhichOneof("message") == "frame"]
    assert len(frames) == math.ceil(len(audio) / 16000 * 30)
    assert [f.index for f in frames] == list(range(len(frames)))
    assert [f.pts_ms for f in frames] == [round(i * 1000 / 30) for i in range(len(frames))]
    assert all(f.pixels == b"" and f.rect.width == f.rect.height == 0 for f in frames)
    assert all(f.HasField("mouth") for f in frames)
    assert msgs[-1].WhichOneof("message") == "ended" and msgs[-1].ended.stats.bytes_sent == 0
    visemes, shapes = mouths(frames)
    check_blocks(visemes, shapes)
    # silence (well inside the pauses, past the look-ahead): jaw closed, `sil` dominant
    silent = np.r_[0:24, len(frames) - 20:len(frames)]
    assert shapes[silent, JAW].max() < 0.05
    assert (visemes[silent].argmax(1) == SIL).all() and visemes[silent, SIL].min() > 0.9
    # speech: the jaw moves, and other visemes than `sil` lead
    speech = slice(36, 36 + 75)
    assert shapes[speech, JAW].std() > 0.05 and shapes[speech, JAW].max() > 0.3
    assert (visemes[speech].argmax(1) != SIL).mean() > 0.7


def test_image_frames_carry_the_same_mouth_as_motion_only(warp_server, avatar, speech_16k):
    audio = speech_16k[: 2 * 16000]
    image = [m.frame for m in animate(warp_server.stub(), avatar, audio) if m.WhichOneof("message") == "frame"]
    motion = [m.frame for m in animate(warp_server.stub(), avatar, audio, motion_only=True)
              if m.WhichOneof("message") == "frame"]
    assert len(image) == len(motion) == 50
    assert all(f.mouth.blendshapes for f in image)
    np.testing.assert_allclose(mouths(image)[1], mouths(motion)[1], atol=1e-5)
    np.testing.assert_allclose(mouths(image)[0], mouths(motion)[0], atol=1e-5)


def test_diffusion_frames_carry_the_mouth_too(server, portrait_bytes, speech_16k):
    stub = server.stub()
    avatar_id = stub.CreateAvatar(pb.CreateAvatarRequest(portrait_image=portrait_bytes)).avatar_id
    frames = [m.frame for m in animate(stub, avatar_id, speech_16k[: 16000]) if m.WhichOneof("message") == "frame"]
    assert len(frames) == 25 and all(f.pixels for f in frames)
    check_blocks(*mouths(frames))


def test_render_motion_writes_one_row_per_frame(tmp_path, speech_16k):
    import json

    from avatar_service.cli import main
    import soundfile

    from conftest import ASSETS

    wav = tmp_path / "line.wav"
    soundfile.write(wav, speech_16k[: 2 * 16000], 16000)
    out = tmp_path / "line.json"
    assert main(["render", "--image", str(ASSETS / "astronaut.png"), "--audio", str(wav), "--motion", str(out),
                 "--fps", "30", "--model", "tiny"]) == 0
    curves = json.loads(out.read_text())
    assert curves["fps"] == 30 and curves["blendshape_names"] == list(BLENDSHAPE_NAMES)
    assert [f["time_s"] for f in curves["frames"]] == [round(round(i * 1000 / 30) / 1000, 4) for i in range(60)]
    assert all(len(f["visemes"]) == 15 and len(f["blendshapes"]) == 18 for f in curves["frames"])
