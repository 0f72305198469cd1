"""`avatarlab dub` on a real clip with the tiny model: original resolution, new audio, mouth regenerated
only while the new speech lasts (or the video trimmed to it)."""
import numpy as np
import soundfile as sf

from avatar_service.dub import dub
from avatar_service.media import decode_video, read_audio
from conftest import ASSETS, need_data


def test_dub_regenerates_the_mouth_for_the_speech_only(tmp_path):
    src = need_data("talking", "lrs39_00002.mp4")  # 35 frames, 160x160, 25 fps
    speech = read_audio(ASSETS / "demo_line.wav")[: int(0.6 * 16000)]
    wav = tmp_path / "new.wav"
    sf.write(wav, speech, 16000)
    out = tmp_path / "dub.mp4"
    res = dub(str(src), str(wav), str(out), model="tiny", renderer="diffusion", log=lambda *a, **k: None)
    assert res == {"frames": 35, "generated": 15, "fps": 25.0}
    original, dubbed = decode_video(src, 60), decode_video(out, 60)
    assert len(dubbed) == 35 and dubbed[0].shape == original[0].shape
    diff = [np.abs(a.astype(int) - b).mean() for a, b in zip(original, dubbed)]
    # the random tiny model paints noise into the mouth while speech lasts; afterwards only codec noise remains
    assert np.mean(diff[:15]) > 2 * np.mean(diff[16:])
    trimmed = dub(str(src), str(wav), str(tmp_path / "t.mp4"), model="tiny", renderer="diffusion", trim=True,
                  log=lambda *a, **k: None)
    assert trimmed["frames"] == 15 and len(decode_video(tmp_path / "t.mp4", 60)) == 15
    # AAC adds its priming and last-frame padding (up to ~2 frames of 1024 samples)
    assert abs(len(read_audio(tmp_path / "t.mp4")) / 16000 - 0.6) < 0.15


def test_warp_dub_moves_the_mouth_and_keeps_every_pixel_outside_the_face():
    """The warp renderer on a real clip: the mouth moves with the new speech, and background, hair and
    clothes (everything outside the face and its band) keep their exact pixels."""
    from avatar_service.dub import face_track, frame_meshes, open_video, warp_frames
    from avatar_service.face.align import FaceLayout
    from avatar_service.face.mesh import mouth_opening
    from avatar_service.media.clips import iter_frames
    from avatar_service.runtime.warp_renderer import MeshWarp, MotionModel, measure_mesh

    src = need_data("talking", "lrs39_00002.mp4")  # 35 frames, 160x160, 25 fps
    info, fps = open_video(str(src))
    layout = FaceLayout()
    mats = face_track(info, layout, fps)
    meshes = frame_meshes(info, mats, layout, fps, len(mats))
    mm = MotionModel.default()
    speech = read_audio(ASSETS / "demo_line.wav")[: int(1.4 * 16000)]
    motion = mm.predict_clip(speech, len(mats), fps)
    original = list(iter_frames(info, fps))
    dubbed = list(warp_frames(iter(original), meshes, mm, motion))
    assert len(dubbed) == len(original)
    changed = 0
    for frame, src_frame, mesh in zip(dubbed, original, meshes):
        x, y, w, h = MeshWarp(src_frame, mesh, mm.basis.vertices).rect
        outside = np.ones(frame.shape[:2], bool)
        outside[y:y + h, x:x + w] = False
        assert np.array_equal(frame[outside], src_frame[outside])
        changed += not np.array_equal(frame, src_frame)
    assert changed >= len(dubbed) - 2
    openings = [mouth_opening(measure_mesh(f)) for f in dubbed[::3]]
    assert np.ptp(openings) > 0.03  # the mouth moves with the speech
