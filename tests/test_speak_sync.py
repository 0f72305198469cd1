"""Speak's served viseme onsets against a pocketsphinx forced alignment of the served audio (issue #20's
bar, evaluation/speak_sync.py): real espeak-ng synthesis through the Speak path, real alignment. Lines
have two sentences, so the pause Speak puts between them is on the clock; each half of a line is checked
on its own, so an offset in the later sentence cannot hide behind the first."""
from __future__ import annotations

import numpy as np
import pytest

from avatar_service.evaluation.speak_sync import (forced_alignment, match_onsets, runs_of_frames,
                                                  runs_of_segments)
from avatar_service.speech.visemes import viseme_segments

LINES = ("Peter took five big maps. Then she sat down by the river.",
         "We should leave soon. My father will bring the food.")


def test_match_onsets_pairs_equal_labels_in_order_and_skips_the_line_start():
    ref = [("sil", 0.0), ("PP", 0.10), ("aa", 0.20), ("DD", 0.30), ("sil", 0.40)]
    hyp = [("sil", 0.0), ("PP", 0.12), ("E", 0.18), ("aa", 0.25), ("sil", 0.41)]
    assert match_onsets(ref, hyp) == [("PP", 0.10, 0.12), ("aa", 0.20, 0.25), ("sil", 0.40, 0.41)]
    assert runs_of_segments([("PP", 0.1, 0.2), ("PP", 0.2, 0.3), ("aa", 0.5, 0.6)]) == [
        ("sil", 0.0), ("PP", 0.1), ("sil", 0.3), ("aa", 0.5), ("sil", 0.6)]


@pytest.fixture(scope="module")
def served():
    pytest.importorskip("pocketsphinx")
    from avatar_service.evaluation.speak_sync import served_line, server_mouth, speak_service
    from avatar_service.speech.backends import BackendUnavailable
    from avatar_service.speech.config import VoiceConfig

    voices = [VoiceConfig(voice_id="espeak-ng/en-us", backend="espeak-ng", espeak_voice="en-us"),
              VoiceConfig(voice_id="espeak-ng/en-us+f2", backend="espeak-ng", espeak_voice="en-us+f2",
                          speaking_rate=1.2)]
    try:
        service = speak_service(voices)
    except BackendUnavailable as e:
        pytest.skip(str(e))
    mouth = server_mouth()
    try:
        yield [(text, served_line(service, service.voice(v.voice_id), text, mouth))
               for text in LINES for v in voices]
    finally:
        service.close()


def onset_errors_ms(text, line, shift_s=0.0):
    """|served - aligned| of matched onsets, ms, for the line's first and second half."""
    ref = runs_of_segments(viseme_segments(forced_alignment(line.audio, text)))
    pairs = match_onsets(ref, runs_of_frames(line.frame_pts_s + shift_s, line.frame_visemes))
    assert len(pairs) >= 0.6 * sum(onset > 0 for _, onset in ref), (text, len(pairs), len(ref))
    half = len(line.audio) / 16000 / 2
    return [[abs(h - r) * 1000 for _, r, h in pairs if (r >= half) == second] for second in (False, True)]


def test_served_viseme_onsets_follow_the_audio_in_both_sentences(served):
    for text, line in served:
        first, second = onset_errors_ms(text, line)
        assert len(first) >= 5 and len(second) >= 5
        assert np.median(first) <= 40 and np.median(second) <= 40, (text, np.median(first), np.median(second))


def test_a_shifted_mouth_fails_the_same_check(served):
    # the check above can fail: the same lines with the mouth 80 ms late (or early) are caught
    for shift in (0.08, -0.08):
        medians = [np.median(half) for text, line in served for half in onset_errors_ms(text, line, shift)]
        assert np.median(medians) > 40, (shift, medians)
