"""Speech -> mouth motion: the predictor's heads learn, round-trip and read silence as a closed mouth;
the phoneme -> viseme table covers what the voices say; synthetic lines carry real timings; the
sync-offset cleaning finds a planted offset."""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from avatar_service.data.av_sync import shift
from avatar_service.model.features import WhisperConfig, WindowSpec
from avatar_service.model.motion import Head, MotionPredictor, MotionPredictorConfig
from avatar_service.speech.visemes import INDEX, SIL, VISEMES, frame_labels, viseme_segments, visemes_of
from avatar_service.training.motion_heads import HeadConfig, fit_mlp, fit_ridge, sync_offsets

TINY = HeadConfig(hidden=32, epochs=15, seeds=2, dropout=0.1, input_dropout=0.0)


def _problem(n: int, rng: np.random.Generator):
    """A small nonlinear problem: 3 targets and a 4-way class from 12 features."""
    x = rng.standard_normal((n, 12)).astype(np.float32)
    y = np.stack([np.tanh(x[:, 0] + x[:, 1]), np.maximum(0, x[:, 2]) - 0.4, x[:, 3] * x[:, 4]], 1).astype(np.float32)
    c = (x[:, 5] > 0).astype(int) * 2 + (x[:, 6] > 0.5).astype(int)
    return x, y, c


def test_mlp_head_learns_a_small_problem_and_beats_chance():
    rng = np.random.default_rng(0)
    x, y, c = _problem(3000, rng)
    xt, yt, ct = _problem(1000, rng)
    head = fit_mlp(x, y, TINY)
    assert len(head.layers) == 2 and head.layers[0][0].shape == (12, 2 * TINY.hidden)  # ensemble of two in one head
    r = [np.corrcoef(head(xt)[:, k], yt[:, k])[0, 1] for k in range(3)]
    assert min(r) > 0.6, r
    # the product target is invisible to a linear probe; the MLP reads it
    assert np.corrcoef(fit_ridge(x, y, 1e-3)(xt)[:, 2], yt[:, 2])[0, 1] < 0.2
    cls = fit_mlp(x, c, TINY, classes=4)
    acc = float((cls(xt).argmax(1) == ct).mean())
    assert acc > 0.8, acc  # chance: under 0.4


def _predictor(rng, with_visemes=True) -> MotionPredictor:
    d, p, m = 24, 5, 7
    cfg = MotionPredictorConfig(window=WindowSpec(mel_radius=m // 2, neighbour_radius=0), proj_dims=p,
                                features=WhisperConfig(window_s=1.0, block_s=0.04), articulation=1.2)
    f = p * m

    def dense(i, o):
        return rng.standard_normal((i, o)).astype(np.float32), rng.standard_normal(o).astype(np.float32)

    return MotionPredictor(cfg, rng.standard_normal((d, p)).astype(np.float32), rng.standard_normal(d).astype(np.float32),
                           rng.standard_normal(f).astype(np.float32), rng.uniform(0.5, 2, f).astype(np.float32),
                           Head([dense(f, 16), dense(16, 12)]),
                           Head([dense(f, 8), dense(8, len(VISEMES))]) if with_visemes else None)


def test_save_load_round_trips(tmp_path):
    rng = np.random.default_rng(1)
    pred = _predictor(rng)
    windows = rng.standard_normal((9, 1, 24, 7)).astype(np.float32)
    pred.save_pretrained(tmp_path)
    back = MotionPredictor.from_pretrained(tmp_path)
    assert back.config == pred.config
    np.testing.assert_array_equal(back.predict(windows), pred.predict(windows))
    v = back.visemes(windows)
    np.testing.assert_array_equal(v, pred.visemes(windows))
    np.testing.assert_allclose(v.sum(1), 1, atol=1e-5)
    np.testing.assert_allclose(pred.predict(windows, articulation=1.0) * 1.2, pred.predict(windows), rtol=1e-5)
    no_vis = _predictor(rng, with_visemes=False)
    no_vis.save_pretrained(tmp_path / "plain")
    with pytest.raises(ValueError, match="no viseme head"):
        MotionPredictor.from_pretrained(tmp_path / "plain").visemes(windows)


def test_first_version_ridge_folders_still_load(tmp_path):
    """The ridge format (weights with the bias as last row, the generator's feature settings)."""
    import json

    from safetensors.numpy import save_file

    rng = np.random.default_rng(2)
    d, p, m, k = 24, 4, 5, 12
    t = {"proj": rng.standard_normal((d, p)), "proj_mean": rng.standard_normal(d), "mu": rng.standard_normal(p * m),
         "sd": rng.uniform(0.5, 2, p * m), "weights": rng.standard_normal((p * m + 1, k))}
    save_file({a: b.astype(np.float32) for a, b in t.items()}, str(tmp_path / "motion_predictor.safetensors"))
    (tmp_path / "motion_predictor.json").write_text(json.dumps(
        {"window": {"mel_radius": 2, "neighbour_radius": 0}, "proj_dims": p, "ridge": 30.0, "articulation": 1.3,
         "n_components": k}))
    pred = MotionPredictor.from_pretrained(tmp_path)
    assert pred.config.features == WhisperConfig() and pred.visemes_head is None
    assert pred.config.gate == (-65.0, -50.0, 0.06)  # it needs the gate to close on silence
    windows = rng.standard_normal((3, 1, d, m)).astype(np.float32)
    x = ((windows[:, 0].transpose(0, 2, 1) - t["proj_mean"]) @ t["proj"]).reshape(3, -1)
    want = (((x - t["mu"]) / t["sd"]) @ t["weights"][:-1] + t["weights"][-1]) * 1.3
    np.testing.assert_allclose(pred.predict(windows), want, rtol=1e-4, atol=1e-4)


def test_speed_perturbation_keeps_audio_and_motion_together():
    from avatar_service.training.motion import sped_targets, speed_up

    audio = np.sin(np.arange(16000) / 16000 * 2 * np.pi * 200).astype(np.float32)
    fast = speed_up(audio, 1.1)
    assert abs(len(fast) - 16000 / 1.1) < 2
    # the 200 Hz tone plays at 220 Hz: pitch moves with speed
    spectrum = np.abs(np.fft.rfft(fast))
    assert abs(np.argmax(spectrum) / len(fast) * 16000 - 220) < 3
    ramp = np.arange(50, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)  # frame index as the target
    sped = sped_targets(ramp, 1.25)
    assert len(sped) == 40
    np.testing.assert_allclose(sped[10:30, 0], (np.arange(10, 30) + 0.5) * 1.25 - 0.5, atol=1e-5)


def test_viseme_table_splits_diphthongs_and_shares_time():
    assert visemes_of("aɪ") == ["aa", "ih"] and visemes_of("tʃ") == ["CH"] and visemes_of("ː") == []
    # a stress mark timed on its own (piper) starts the syllable after it, not the sound before
    assert viseme_segments([("p", 0.0, 0.1), ("ˈ", 0.1, 0.15), ("a", 0.15, 0.3)]) == [("PP", 0.0, 0.1), ("aa", 0.1, 0.3)]
    segs = viseme_segments([("", 0.0, 0.1), ("h", 0.1, 0.15), ("ˈ", 0.15, 0.2), ("aɪ", 0.2, 0.4), (" ", 0.4, 0.45),
                            ("m", 0.45, 0.5), (".", 0.5, 0.7)])
    assert [s[0] for s in segs] == ["sil", "aa", "ih", "PP", "sil"]  # 'h' and the stress mark take the vowel
    assert segs[0][2] == segs[1][1] and segs[1][2] == pytest.approx(0.3) and segs[2][2] == pytest.approx(0.45)
    labels = frame_labels(segs, 20, 25.0)
    assert labels[0] == SIL and labels[6] == INDEX["aa"] and labels[8] == INDEX["ih"] and labels[-1] == SIL
    with pytest.raises(KeyError, match="TABLE"):
        visemes_of("ʘ")


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (apt-get install espeak-ng)")
def test_every_phoneme_the_synthetic_voices_say_has_a_viseme():
    from avatar_service.training.synthetic_speech import ESPEAK_VOICES, WORDS

    for voice in ESPEAK_VOICES:
        ipa = subprocess.run(["espeak-ng", "-v", voice, "-q", "--ipa", WORDS.replace("\n", " ")],
                             capture_output=True, text=True, check=True).stdout
        for word in ipa.split():
            assert visemes_of(word), word  # raises KeyError on a symbol the table lacks


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (apt-get install espeak-ng)")
def test_espeak_line_timings_follow_the_audio():
    """Pauses are quiet and vowels loud where the phoneme events say they are."""
    from avatar_service.training.synthetic_speech import SAMPLE_RATE, espeak_lines

    line = espeak_lines(["Papa saw a cat, and then ... a mouse."], np.random.default_rng(0), voices=("en-us",),
                        variants=("",))[0]
    times = [(s, e) for _, s, e in line.phonemes]
    assert all(e > s for s, e in times) and all(a[1] == pytest.approx(b[0]) for a, b in zip(times, times[1:]))
    assert times[-1][1] == pytest.approx(line.seconds, abs=0.02)

    def rms(v):
        seg = [line.audio[int(s * SAMPLE_RATE): int(e * SAMPLE_RATE)] for vv, s, e in viseme_segments(line.phonemes)
               if vv == v and e - s > 0.04]
        return float(np.sqrt(np.mean(np.concatenate(seg) ** 2)))

    assert rms("aa") > 5 * rms("sil")


def test_sync_offsets_find_a_planted_offset():
    """Clips whose targets lag their audio by a known number of frames are found and realigned."""
    rng = np.random.default_rng(3)
    planted = {"a": 0, "b": 3, "c": -2, "d": 0, "e": 1, "f": 0, "g": -4, "h": 2}
    xs, ys, opens, groups = [], [], [], []
    w = rng.standard_normal((10, 2))
    for name, lag in planted.items():
        x = rng.standard_normal((400, 10)).astype(np.float32)
        y = (x @ w).astype(np.float32)  # what the audio says
        ys.append(shift(y, -lag))  # ... seen `lag` frames later in the video
        xs.append(x)
        opens.append(ys[-1][:, 0].copy())
        groups.append(name)
    found = sync_offsets(xs, ys, opens, groups, np.array([1.0, 0.0]), folds=4, max_lag=6, ridge=1e-3)
    assert [d for d, _ in found] == list(planted.values())
    assert all(r > 0.9 for _, r in found)
    b = list(planted).index("b")
    realigned = shift(ys[b], found[b][0])
    ok = np.isfinite(realigned).all(1)
    np.testing.assert_allclose(realigned[ok], (xs[b] @ w)[ok], rtol=1e-5)


def _embedded():
    pytest.importorskip("ctranslate2", reason="Whisper features need ctranslate2")
    from avatar_service.runtime.warp_renderer import EMBEDDED_MOTION, MotionModel

    if not (EMBEDDED_MOTION / "motion_predictor.json").exists():
        pytest.skip(f"no embedded motion model in {EMBEDDED_MOTION}")
    return MotionModel.default()


SILENCES = {"digital silence": np.zeros(32000, np.float32),
            "faint noise": (np.random.default_rng(0).standard_normal(32000) * 1e-3).astype(np.float32)}


def test_served_motion_is_closed_on_digital_silence_and_moves_with_speech(speech_16k):
    model = _embedded()
    np.testing.assert_array_equal(model.predict_clip(SILENCES["digital silence"], 50, 25.0), 0)
    assert np.abs(model.predict_clip(speech_16k, 100, 25.0)).max() > 0.5


def test_the_model_itself_reads_silence_as_a_closed_mouth_and_sil(speech_16k):
    """Without the loudness gate: the model was trained on silent rows too, so it does not answer
    silence with the average mouth."""
    from avatar_service.training.motion import opening_direction

    model = _embedded()
    pred = model.predictor
    if pred.visemes_head is None:
        pytest.skip("the embedded motion model predates the viseme head and the silent training rows")
    g = opening_direction(model.basis)
    n = int(len(speech_16k) / 16000 * 25)
    windows = pred.clip_windows(speech_16k, n, 25.0)
    speech_open = float(np.median(pred.predict(windows) @ g))
    assert (pred.visemes(windows).argmax(1) == SIL).mean() < 0.5
    for name, audio in SILENCES.items():
        windows = pred.clip_windows(audio, 50, 25.0)
        assert float(np.median(pred.predict(windows) @ g)) < 0.5 * speech_open, name
        assert (pred.visemes(windows).argmax(1) == SIL).mean() > 0.9, name
