"""The log-mel motion student (model/motion_student.py): distilled from the shipped Whisper motion model on
real audio, saved and loaded exactly, and served (runtime/mouth.py MelMouth) frame for frame as offline."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from avatar_service.model.features import MelConfig, PastWindow
from avatar_service.model.motion_student import MotionStudent, StudentConfig
from avatar_service.runtime.warp_renderer import EMBEDDED_MOTION, MotionModel

TINY = StudentConfig(mel=MelConfig(n_mels=16), window=PastWindow(mel_radius=11, neighbour_radius=0, past=4),
                     frame_dims=4, hidden=(8,))


@pytest.fixture(scope="module")
def teacher():
    return MotionModel.default()


@pytest.fixture(scope="module")
def trained(teacher, speech_16k):
    """A tiny student after a few distillation steps on the bundled line and silence."""
    from avatar_service.training.motion import opening_direction
    from avatar_service.training.motion_student import Data, StudentTrainConfig, train

    cfg = StudentTrainConfig(student=TINY, batch=32)
    student = MotionStudent.init(dataclasses.replace(TINY, n_components=teacher.predictor.n_components))
    before = [w.copy() for w, _ in student.trunk.layers]
    data = Data(student, teacher.predictor, cfg)
    feat = teacher.predictor.feature_extractor()
    audio = speech_16k[: 3 * 16000]
    n = int(len(audio) / 16000 * 25)
    labels = np.random.default_rng(0).integers(0, 15, n)  # stands in for a synthetic line's exact labels
    data.add("line", audio, feat.all(audio), labels=labels)
    silence = np.zeros(16000, np.float32)
    data.add("silence", silence, feat.all(silence), motion=np.zeros((25, student.config.n_components), np.float32))
    arrays = data.arrays()
    report = train(student, arrays, opening_direction(teacher.basis), cfg, steps=6, progress=False)
    return student, before, arrays, report


def test_distillation_trains_on_teacher_targets_and_moves_the_weights(trained, teacher):
    student, before, arrays, report = trained
    assert report["steps"] == 6 and np.isfinite(report["history"][-1]["loss"])
    # samples at 50 fps carry the teacher's motion and viseme logits; the hard rows their labels or motion
    soft = ~arrays["hard"]
    assert np.isfinite(arrays["motion"][soft]).all() and np.isfinite(arrays["logits"][soft]).all()
    assert (arrays["labels"][arrays["hard"]] >= 0).sum() == 75 and np.isfinite(arrays["motion"][arrays["hard"]]).sum() == 25 * 12
    assert any(not np.allclose(a, w) for a, (w, _) in zip(before, student.trunk.layers))
    assert student.mu.shape == (16,) and (student.sd > 0).all()


def test_student_saves_and_loads_identically(trained, tmp_path, speech_16k):
    student = trained[0]
    student.save_pretrained(tmp_path)
    back = MotionStudent.from_pretrained(tmp_path)
    assert back.config == student.config
    w = student.clip_windows(speech_16k[:16000], 25, 25.0)
    assert w.shape == (25, student.config.frames, 16)
    for a, b in zip(student.outputs(w), back.outputs(w)):
        np.testing.assert_array_equal(a, b)


def test_look_ahead_stays_within_120_ms():
    student = MotionStudent.init(StudentConfig())
    for fps in (25, 30, 60):
        assert student.lookahead_s(fps) <= 0.12


def test_served_stream_equals_offline_frames(trained, teacher, speech_16k):
    """MelMouth, fed as a session feeds it (ready frames as 100 ms chunks arrive, then the rest at the
    end), gives the offline read-out with the gate and rig, and closes the mouth on silence."""
    from avatar_service.model.motion import softmax
    from avatar_service.runtime.mouth import MelMouth, gated_visemes
    from avatar_service.speech.visemes import SIL

    student = trained[0]
    mouth = MelMouth(dataclasses.replace(teacher, student=student))
    audio = np.concatenate([np.zeros(16000, np.float32), speech_16k[: 2 * 16000]])
    fps = 30
    n = int(np.ceil(len(audio) / 16000 * fps))
    motion, logits = student.outputs(student.clip_windows(audio, n, fps))
    gate = student.gate(audio, 0, n, fps)
    cache, blocks = {}, []
    for end in range(1600, len(audio) + 1, 1600):
        ready = n if end == len(audio) else mouth.window.frames_ready(end, fps, mouth.features)
        if ready > len(blocks):
            blocks += mouth.blocks(audio[:end], len(blocks), ready, fps, cache, 0.0)
    assert len(blocks) == n
    shapes = np.array([b.blendshapes for b in blocks])
    np.testing.assert_allclose(shapes, teacher.rig.blendshapes(motion * gate[:, None]), atol=1e-5)
    np.testing.assert_allclose(np.array([b.visemes for b in blocks]), gated_visemes(softmax(logits), gate), atol=1e-5)
    assert shapes[:20].max() == 0 and all(b.visemes[SIL] == 1 for b in blocks[:20])
    mouth.batcher.close()


def test_a_session_that_left_does_not_hold_up_the_others_in_its_batch(trained, teacher, speech_16k):
    import concurrent.futures

    from avatar_service.runtime.mouth import MelMouth, _MelJob

    mouth = MelMouth(dataclasses.replace(teacher, student=trained[0]))
    audio = speech_16k[:16000]
    jobs = [_MelJob(audio, 0, 10, 25.0, {}, 0.0, concurrent.futures.Future()) for _ in range(3)]
    jobs[1].future.cancel()
    mouth._run(None, jobs)  # as the batch thread runs them
    assert len(jobs[0].future.result(timeout=0)) == len(jobs[2].future.result(timeout=0)) == 10
    assert jobs[1].future.cancelled() and "mel_codes" not in jobs[1].cache
    mouth.batcher.close()


def test_mel_frontend_needs_a_student(tmp_path, teacher):
    from avatar_service.runtime.mouth import MelMouth

    with pytest.raises(FileNotFoundError, match="train motion-student"):
        MelMouth(dataclasses.replace(teacher, student=None))


def test_the_shipped_motion_model_carries_a_small_student():
    model = MotionModel.default()
    assert MotionStudent.present(EMBEDDED_MOTION) and model.student is not None
    assert (EMBEDDED_MOTION / "motion_student.safetensors").stat().st_size < 2_000_000
    assert model.student.config.n_components == model.predictor.n_components


def test_image_sessions_average_the_students_motion_into_the_teachers_by_its_blend(teacher, speech_16k):
    """MotionModel.predict (image sessions, render, dub) serves (1 - w) teacher + w student, gated; w = 0
    is the teacher alone; the student's look-ahead is within the teacher's at every frame rate."""
    audio = speech_16k[: 2 * 16000]
    feat = teacher.features()
    spec = teacher.predictor.config.window
    windows = spec.gather(feat.all(audio), 0, spec.mel_centres(np.arange(50), 25.0, feat), feat)
    alone = dataclasses.replace(teacher, student=dataclasses.replace(
        teacher.student, config=dataclasses.replace(teacher.student.config, blend=0.0)))
    half = dataclasses.replace(teacher, student=dataclasses.replace(
        teacher.student, config=dataclasses.replace(teacher.student.config, blend=0.5)))
    t, gate = alone.predict_gated(windows, audio, 0, 50, 25.0)
    both, gate2 = half.predict_gated(windows, audio, 0, 50, 25.0)
    s = teacher.student.predict(teacher.student.clip_windows(audio, 50, 25.0))
    np.testing.assert_array_equal(t, teacher.predictor.predict(windows) * gate[:, None])
    np.testing.assert_allclose(both, 0.5 * t + 0.5 * s * gate2[:, None], atol=1e-5)
    assert np.abs(both - t).max() > 1e-3  # the student moves it
    for fps in (10, 24, 25, 30, 50, 60):
        assert teacher.student.lookahead_s(fps) <= teacher.predictor.lookahead_s(fps) + 1e-9

