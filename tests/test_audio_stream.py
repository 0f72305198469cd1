"""The session's audio stream on its own: sample formats, channels, resampling in chunks, and the
errors a client's bad audio gets."""
from __future__ import annotations

import numpy as np
import pytest

from avatar_service.errors import InvalidArgument, ResourceExhausted
from avatar_service.runtime.audio_stream import AudioStream, SampleFormat


def test_s16_stereo_becomes_mono_float():
    s = AudioStream(SampleFormat.S16LE, 16000, 2, 16000, 10)
    pcm = np.array([[16384, -16384], [32767, 32767], [-32768, 0]], "<i2")
    s.push(pcm.tobytes())
    np.testing.assert_array_equal(s.samples, np.array([0.0, 32767 / 32768, -0.5], np.float32))
    assert s.input_samples == 3 and s.duration_s == 3 / 16000


def test_float_samples_and_f32_bytes_are_the_same_input(speech_16k):
    a = AudioStream(SampleFormat.F32LE, 22050, 1, 16000, 10)
    b = AudioStream(SampleFormat.F32LE, 22050, 1, 16000, 10)
    x = speech_16k[:22050].astype(np.float32)
    a.push(x.astype("<f4").tobytes())
    b.push_samples(x)
    a.end()
    b.end()
    np.testing.assert_array_equal(a.samples, b.samples)


def test_resampling_in_chunks_keeps_the_clock(speech_16k):
    """48 kHz in chunks of any size -> 16 kHz, the same length and signal as one resample."""
    x = np.repeat(speech_16k[:16000], 3)  # 1 s at 48 kHz (a crude upsample is fine for this)
    chunked = AudioStream(SampleFormat.F32LE, 48000, 1, 16000, 10)
    for i in range(0, len(x), 4801):
        chunked.push_samples(x[i:i + 4801])
    chunked.end()
    whole = AudioStream(SampleFormat.F32LE, 48000, 1, 16000, 10)
    whole.push_samples(x)
    whole.end()
    assert chunked.duration_s == 1.0 and abs(len(chunked.samples) - 16000) <= 2
    np.testing.assert_allclose(chunked.samples, whole.samples[: len(chunked.samples)], atol=1e-4)
    assert np.corrcoef(chunked.samples[:15000], speech_16k[:15000])[0, 1] > 0.9


def test_bad_audio_is_the_clients_error():
    s = AudioStream(SampleFormat.S16LE, 16000, 2, 16000, 1.0)
    with pytest.raises(InvalidArgument, match="whole number"):
        s.push(b"\x00" * 6)  # 1.5 stereo sample frames
    f = AudioStream(SampleFormat.F32LE, 16000, 1, 16000, 1.0)
    with pytest.raises(InvalidArgument, match="NaN"):
        f.push_samples(np.array([0.0, np.nan], np.float32))
    with pytest.raises(ResourceExhausted, match="1 s limit"):
        f.push_samples(np.zeros(16001, np.float32))
    f.end()
    with pytest.raises(InvalidArgument, match="after end_of_audio"):
        f.push_samples(np.zeros(1, np.float32))
