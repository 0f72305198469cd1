"""Speak's exact visemes: the voice's own phonemes and timings through the one viseme table, with
coarticulation. Onsets are checked against the backend's own phoneme timings (piper's duration
alignments, espeak-ng's phoneme events), not a forced alignment of the audio."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from avatar_service.speech.config import DEFAULT_VOICES
from avatar_service.speech.visemes import INDEX, SIL, viseme_segments

LINE = "Peter thought five big cars would fit in the old shed. Sure, she said."


@pytest.fixture(scope="module")
def text_mouth():
    from avatar_service.runtime.mouth import AudioMouth
    from avatar_service.runtime.warp_renderer import MotionModel
    from avatar_service.speech.text_mouth import TextMouth

    model = MotionModel.default()
    return lambda: TextMouth(AudioMouth(model, features=None))


def voice(backend: str):
    from avatar_service.speech.backends import BackendUnavailable
    from avatar_service.speech.service import load_voice

    try:
        return load_voice(next(v for v in DEFAULT_VOICES if v.backend == backend))
    except BackendUnavailable as e:
        pytest.skip(str(e))


@pytest.mark.parametrize("backend", ["piper", "espeak-ng"])
def test_viseme_onsets_follow_the_voices_phoneme_timings(text_mouth, backend):
    v = voice(backend)
    mouth, segments, offset = text_mouth(), [], 0.0
    for s in v.spoken(LINE, threading.Event()):
        mouth.add(s.phonemes, offset)
        segments += [(name, a + offset, b + offset) for name, a, b in viseme_segments(list(s.phonemes))]
        offset += len(s.audio) / v.sample_rate_hz
    times = np.arange(0, offset, 0.005)
    top = mouth.weights(times).argmax(1)
    errors = []
    for name, start, end in segments:
        if name == "sil" or end - start < 0.03:
            continue
        near = (times >= start - 0.1) & (times < end)
        hits = times[near & (top == INDEX[name])]
        errors.append(abs(hits[0] - start) if len(hits) else end - start)
    assert len(errors) > 20
    assert np.median(errors) <= 0.04, f"{backend}: median onset error {np.median(errors) * 1000:.0f} ms"


def test_coarticulation_anticipates_the_next_viseme_and_silence_is_sil(text_mouth):
    mouth = text_mouth()
    mouth.add([("", 0.0, 0.5), ("m", 0.5, 0.6), ("ɑː", 0.6, 0.9), ("", 0.9, 1.5)], 0.0)
    w = mouth.weights(np.array([0.2, 0.46, 0.55, 0.75, 1.3]))
    assert w[0, SIL] == 1.0 and w[-1, SIL] == 1.0
    assert 0 < w[1, INDEX["PP"]] < w[1, SIL]  # 40 ms before the m: the lips already start to close
    assert w[2].argmax() == INDEX["PP"] and w[2, INDEX["aa"]] > 0  # inside the m, the vowel is coming
    assert w[3].argmax() == INDEX["aa"]
    np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-6)
    shapes = mouth.rig.blendshapes(mouth.rig.motion_of_visemes(w))
    assert shapes[3, 0] > shapes[0, 0] + 0.1  # jawOpen: "ah" open, silence closed
