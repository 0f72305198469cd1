"""The embedded default model: it ships in the repo, loads with no download through both backends, and
its mouth follows the audio (open while speaking, closed on silence)."""
import numpy as np
import pytest

from avatar_service.runtime.backend import OnnxBackend, TorchBackend, load_backend
from avatar_service.runtime.models import EMBEDDED_MODEL

pytestmark = pytest.mark.skipif(not (EMBEDDED_MODEL / "config.json").exists(), reason="no embedded model in this checkout")


def test_both_backends_load_and_agree():
    tb, ob = load_backend("default", "torch"), load_backend("default", "onnx")
    assert isinstance(tb, TorchBackend) and isinstance(ob, OnnxBackend) and tb.config == ob.config
    z = np.random.default_rng(0).standard_normal((2, *tb.config.latent_shape)).astype(np.float32)
    t = np.array([999, 250])
    assert np.abs(tb.denoise(z, t, z, z, tb.null_tokens(2)) - ob.denoise(z, t, z, z, ob.null_tokens(2))).max() < 1e-3
    assert np.abs(tb.decode(z) - ob.decode(z)).max() < 1e-3


def test_silence_closes_the_mouth(tmp_path, speech_16k, portrait_bytes):
    from avatar_service.api import pb
    from avatar_service.client import AvatarLabClient
    from avatar_service.evaluation.metrics import mouth_track
    from conftest import start_server

    h = start_server(tmp_path, model="default")
    try:
        client = AvatarLabClient(h.target)
        a = client.create_avatar(image=portrait_bytes)
        video = pb.VideoOptions(pixel_format=pb.PIXEL_FORMAT_RGB8)
        talk, _ = client.animate(a.avatar_id, speech_16k[16000: 16000 * 4], 16000, video=video)
        quiet, _ = client.animate(a.avatar_id, np.zeros(16000 * 2, np.float32), 16000, video=video)
    finally:
        h.stop()
    open_talk = mouth_track(np.stack([f.image for f in talk])).mouth_open
    open_quiet = mouth_track(np.stack([f.image for f in quiet])).mouth_open
    assert np.isfinite(open_talk).mean() > 0.8 and np.isfinite(open_quiet).mean() > 0.8
    # speech opens the mouth more, and moves it more, than silence
    assert np.nanmean(open_quiet) < np.nanmean(open_talk)
    assert np.nanstd(open_quiet) < np.nanstd(open_talk)
