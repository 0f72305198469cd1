"""The generator on tiny configs: real forward passes, save/load, ONNX parity, masking, sampling."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from avatar_service.face.lips import OUTER_LIP_MASK
from avatar_service.face import FaceDetector, align_matrix, warp_to_crop
from avatar_service.face.align import FaceLayout
from avatar_service.model import FaceGenerator, GeneratorConfig
from avatar_service.model.features import MelConfig, WindowSpec, clip_windows, log_mel
from avatar_service.runtime.avatar import AvatarState, lip_points, masked_region
from avatar_service.runtime.avatar_setup import prepare_avatar
from avatar_service.runtime.backend import OnnxBackend, TorchBackend
from avatar_service.runtime.export import export_onnx
from avatar_service.runtime.sampler import sample_latents
from conftest import ASSETS


@pytest.fixture(scope="module")
def gen():
    return FaceGenerator.random(GeneratorConfig.tiny(), seed=3)


@pytest.fixture(scope="module")
def portrait():
    return np.asarray(Image.open(ASSETS / "astronaut.png").convert("RGB"))


def test_shapes_and_ranges_through_every_stage(gen, speech_16k):
    cfg = gen.config
    windows = clip_windows(speech_16k[:16000], 25, 25.0, cfg.feature_extractor(), cfg.window)
    assert windows.shape == (25, 5, cfg.mel.n_mels, 17)
    assert -1.01 <= windows.min() and windows.max() < 3
    h, w = cfg.layout.region_shape
    region = torch.rand(4, 3, h, w) * 2 - 1
    with torch.no_grad():
        z = gen.encode(region)
        assert z.shape == (4, *cfg.latent_shape)
        tok, offsets = gen.audio(torch.from_numpy(windows[:4]))
        # the smoothed feature, one per neighbour (5) and the predicted lip-shape token
        assert tok.shape == (4, 7, cfg.audio.token_dim) and torch.isfinite(tok).all()
        assert offsets.shape == (4, 40, 2)
        _, lips = gen.audio_encoder.encode(torch.from_numpy(windows[:4]))
        assert lips.shape == (4, cfg.audio.lip_components)
        out = gen.denoise(z, torch.tensor([999, 500, 10, 0]), z, z, tok, gen.lip_rest + offsets)
        assert out.shape == z.shape
        assert gen.decode(z).shape == (4, 3, h, w)


def test_streaming_mel_equals_offline(speech_16k):
    cfg = MelConfig()
    full = log_mel(speech_16k[:32000], cfg)
    part = log_mel(speech_16k[:32000], cfg, first_frame=37, n_frames=50)
    np.testing.assert_allclose(part, full[37:87], atol=1e-5)
    assert np.allclose(log_mel(np.zeros(4000, np.float32), cfg), -1.0)  # silence is the floor


@pytest.mark.parametrize("kind", ["logmel", "whisper"])
def test_streamed_windows_equal_offline_ones(kind, speech_16k):
    """Audio arriving in uneven chunks gives each frame, once `frames_ready` says it is final, the very
    window offline featurisation (training, eval) gives it; and frame 0 needs only the first 200 ms."""
    from avatar_service.model.features import AudioFeatureConfig

    spec = WindowSpec(mel_radius=8 if kind == "logmel" else 4)
    cfg = GeneratorConfig(features=AudioFeatureConfig(kind=kind), window=spec)
    feat, fps = cfg.feature_extractor(), 25.0
    audio = speech_16k[:48000]
    offline = clip_windows(audio, 75, fps, feat, spec)
    assert spec.frames_ready(3200, fps, feat) >= 1  # the first frame after 200 ms of audio
    cache, done, have = {}, 0, 0
    for size in [700, 2500, 161, 9000, 4000, 16000, 15639]:
        have += size
        ready = spec.frames_ready(have, fps, feat)
        if ready > done:
            got = spec.windows(audio[:have], done, ready, fps, feat, cache)
            np.testing.assert_allclose(got, offline[done:ready], atol=1e-4)
            done = ready
    assert done >= 70


def test_whisper_blocks_of_concurrent_sessions_share_encoder_calls(speech_16k):
    """Sessions asking for feature blocks at the same time get one batched encoder call, and each gets
    the states it would have got alone."""
    import threading

    from avatar_service.model.features import WhisperConfig
    from avatar_service.model.whisper import WhisperFeatures

    feat = WhisperFeatures(WhisperConfig())
    feat.encoder.wait_s = 0.05  # wide enough that four threads on a busy machine meet in one batch
    clips = [speech_16k[k * 4000: k * 4000 + 16000] for k in range(4)]  # four sessions, one second each
    alone = [feat.compute(c, 40, 10) for c in clips]  # the block holding states 40..49, one call each
    calls, barrier, out = feat.encoder.calls, threading.Barrier(4), [None] * 4

    def session(k):
        barrier.wait()
        out[k] = feat.compute(clips[k], 40, 10)

    threads = [threading.Thread(target=session, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert feat.encoder.calls - calls < 4  # batched (one call when all four arrive within wait_s)
    for a, b in zip(alone, out):
        np.testing.assert_allclose(b, a, atol=1e-4)
    assert not np.allclose(out[0], out[1])  # different audio, different states


def test_save_load_bit_exact(gen, tmp_path):
    gen.latent_std.fill_(1.7)
    path = gen.save_pretrained(tmp_path / "m")
    again = FaceGenerator.from_pretrained(path)
    assert again.config == gen.config
    a, b = gen.state_dict(), again.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    gen.latent_std.fill_(1.0)


def test_config_round_trips_and_rejects_unknown_keys():
    cfg = GeneratorConfig.tiny()
    assert GeneratorConfig.from_dict(cfg.to_dict()) == cfg
    d = cfg.to_dict()
    d["denoiser"]["bogus"] = 1
    with pytest.raises(ValueError, match="bogus"):
        GeneratorConfig.from_dict(d)


def test_onnx_matches_torch(gen, tmp_path, portrait, speech_16k):
    export_onnx(gen, tmp_path / "onnx")
    tb, ob = TorchBackend(gen), OnnxBackend(tmp_path / "onnx")
    state = prepare_avatar(tb, [portrait], 128)
    windows = clip_windows(speech_16k[:8000], 5, 25.0, gen.config.feature_extractor(), gen.config.window)
    noise = np.random.default_rng(0).standard_normal((5, *gen.config.latent_shape)).astype(np.float32)
    zm, zr = np.repeat(state.z_masked, 5, 0), np.repeat(state.z_ref[None], 5, 0)
    outs = []
    for b in (tb, ob):
        tokens, offsets = b.audio(windows)
        z0 = sample_latents(b, noise, zm, zr, tokens, steps=2, guidance=1.5,
                            lip_points=lip_points(state.lip_anchor, offsets, b.lip_rest))
        outs.append(b.decode(z0))
    assert np.abs(outs[0] - outs[1]).max() < 1e-3  # the stated tolerance: 1e-3 in [-1, 1] pixel units
    np.testing.assert_allclose(tb.encode(np.zeros((1, 3, *gen.config.layout.region_shape), np.float32)),
                               ob.encode(np.zeros((1, 3, *gen.config.layout.region_shape), np.float32)), atol=1e-4)


@pytest.mark.parametrize("scheduler", ["ddim", "dpmsolver++"])
@pytest.mark.parametrize("steps", [1, 2, 4, 12])
def test_sampling_any_step_count(gen, steps, scheduler):
    b = TorchBackend(gen)
    c = gen.config
    rng = np.random.default_rng(1)
    z = rng.standard_normal((2, *c.latent_shape)).astype(np.float32)
    tokens, lips = b.null_tokens(2), np.repeat(b.lip_rest[None], 2, 0)
    out = sample_latents(b, z, z, z, tokens, steps, 1.0, scheduler, lip_points=lips)
    assert out.shape == z.shape and np.isfinite(out).all()
    again = sample_latents(b, z, z, z, tokens, steps, 1.0, scheduler, lip_points=lips)
    assert np.array_equal(out, again)  # same seed, same batch: bit-identical


@pytest.mark.parametrize("scheduler", ["ddim", "dpmsolver++"])
def test_lower_start_strength_stays_nearer_the_reference(gen, scheduler):
    """Residual diffusion around z_ref: starting at a low noise level (img2img strength) keeps the sample
    close to the reference; from pure noise it can go anywhere. Same number of denoiser calls."""
    import dataclasses

    rng = np.random.default_rng(0)
    z = rng.standard_normal((3, *gen.config.latent_shape)).astype(np.float32)
    z_ref = rng.standard_normal((3, *gen.config.latent_shape)).astype(np.float32)
    dist = {}
    for strength in (1.0, 0.05):
        serving = gen.config.serving
        cfg = dataclasses.replace(gen.config, serving=dataclasses.replace(
            serving, sampling=dataclasses.replace(serving.sampling, start_strength=strength)))
        g = FaceGenerator(cfg)
        g.load_state_dict(gen.state_dict())
        b = TorchBackend(g.eval())
        out = sample_latents(b, z, z, z_ref, b.null_tokens(3), 2, 1.0, scheduler, lip_points=np.repeat(b.lip_rest[None], 3, 0))
        assert np.isfinite(out).all()
        dist[strength] = float(np.abs(out - z_ref).mean())
    assert dist[0.05] < 0.5 * dist[1.0], dist


def test_mask_leaks_no_lip_shape(portrait):
    """Two crops that differ only inside the mask give identical masked regions."""
    layout = GeneratorConfig().layout
    face = FaceDetector().one_face(portrait)
    crop = warp_to_crop(portrait, align_matrix(face.landmarks, layout), layout)
    other = crop.copy()
    r0 = layout.region_rows[0]
    hard = layout.region_mask() > 0
    other[r0:][hard] = 255 - other[r0:][hard]
    _, m1 = masked_region(crop, layout)
    _, m2 = masked_region(other, layout)
    assert np.array_equal(m1, m2)
    # and the mask really covers the mouth: both mouth corners lie inside it
    corners = np.c_[face.landmarks[3:], np.ones(2)] @ align_matrix(face.landmarks, layout).T
    for x, y in corners:
        assert hard[int(y) - r0, int(x)]


def test_composite_changes_only_the_mouth_area(gen, portrait):
    state = prepare_avatar(TorchBackend(gen), [portrait], 128)
    h, w = gen.config.layout.region_shape
    frame, _ = state.composite(0, np.ones((3, h, w), np.float32))  # a white mouth region
    diff = np.abs(frame.astype(int) - state.textures[0]).sum(axis=2) > 0
    (x, y, rw, rh), _, weight, _ = state._blend[0]
    assert diff.any() and not diff[:y].any() and not diff[:, :x].any()
    # seamless: the blend weight fades to zero at the rectangle's edge
    assert weight[0].max() < 0.05 and weight[:, 0].max() < 0.05


def test_half_size_weights_keep_parity(gen, tmp_path):
    """The shipped model stores fp16 weights (safetensors and ONNX); both backends compute in fp32 from them."""
    gen.save_pretrained(tmp_path / "m", dtype=torch.float16)
    half = FaceGenerator.from_pretrained(tmp_path / "m")
    assert next(half.parameters()).dtype == torch.float32
    assert (tmp_path / "m" / "model.safetensors").stat().st_size < 0.6 * sum(p.numel() * 4 for p in gen.parameters())
    export_onnx(half, tmp_path / "onnx", fp16_weights=True)
    tb, ob = TorchBackend(half), OnnxBackend(tmp_path / "onnx")
    z = np.random.default_rng(2).standard_normal((3, *half.config.latent_shape)).astype(np.float32)
    assert np.abs(tb.decode(z) - ob.decode(z)).max() < 1e-4
    t = np.array([5, 400, 999])
    pts = np.repeat(tb.lip_rest[None], 3, 0)
    assert np.abs(tb.denoise(z, t, z, z, tb.null_tokens(3), pts) - ob.denoise(z, t, z, z, ob.null_tokens(3), pts)).max() < 1e-4


def test_lip_map_draws_each_lip_where_its_points_are(gen):
    """The map the denoiser sees: outer and inner lip as Gaussians at their points (after undoing the
    space-to-depth fold), nothing for non-finite points."""
    from avatar_service.model.networks import LipMap

    cfg = gen.config
    lm = LipMap(cfg)
    s, r0 = cfg.layout.crop_px, cfg.layout.region_rows[0]
    pts = np.full((2, 40, 2), np.nan, np.float32)
    outer = np.array(OUTER_LIP_MASK)
    pts[0, outer] = (0.3, 0.75)  # all outer points at one place, all inner points at another
    pts[0, ~outer] = (0.6, 0.9)
    maps = torch.nn.functional.pixel_shuffle(lm(torch.from_numpy(pts)), lm.fold).numpy()  # (2, 2, H', W')
    ds = cfg.denoiser.lip_map.downsample
    for ch, (x, y) in enumerate([(0.3, 0.75), (0.6, 0.9)]):
        iy, ix = np.unravel_index(maps[0, ch].argmax(), maps[0, ch].shape)
        assert abs((ix + 0.5) * ds - x * s) <= ds and abs((iy + 0.5) * ds - (y * s - r0)) <= ds
    assert maps[0].max() > 0.5 and maps[1].max() == 0  # the all-NaN sample draws nothing


def test_growing_a_lip_map_starts_from_the_trained_model(tmp_path):
    """Fine-tuning a model into one with a lip map: the new input channels start at zero, so before any
    step the grown model predicts exactly what the trained one did."""
    import dataclasses

    from avatar_service.training.denoiser import _init_generator

    plain_cfg = dataclasses.replace(GeneratorConfig.tiny(), denoiser=dataclasses.replace(
        GeneratorConfig.tiny().denoiser, lip_map=dataclasses.replace(GeneratorConfig.tiny().denoiser.lip_map, enabled=False)))
    plain = FaceGenerator.random(plain_cfg, seed=5)
    plain.save_pretrained(tmp_path / "plain")
    grown = _init_generator(str(tmp_path / "plain"), GeneratorConfig.tiny()).eval()
    rng = np.random.default_rng(0)
    z = torch.from_numpy(rng.standard_normal((2, *plain_cfg.latent_shape)).astype(np.float32))
    t = torch.tensor([900, 100])
    tok = plain.null_tokens(2)
    lips = torch.from_numpy(np.repeat(np.array([[[0.5, 0.8]]], np.float32), 2, 0).repeat(40, 1))
    with torch.no_grad():
        torch.testing.assert_close(grown.denoise(z, t, z, z, tok, lips), plain.eval().denoise(z, t, z, z, tok))


def test_reference_lip_anchor_is_measured_or_falls_back(portrait):
    """Avatars of a lip-map model carry the reference's lips (mediapipe on the aligned crop), crop-relative,
    around the mouth; a picture without a face mesh gets the model's average lips; both persist."""
    from avatar_service.runtime.avatar import lip_anchor

    layout = GeneratorConfig.tiny().layout
    rest = np.full((40, 2), 0.5, np.float32)
    crop = warp_to_crop(portrait, align_matrix(FaceDetector().one_face(portrait).landmarks, FaceLayout(crop_px=128)),
                        FaceLayout(crop_px=128))
    a = lip_anchor(crop, rest)
    assert a.shape == (40, 2) and np.isfinite(a).all()
    x0, y0, x1, y1 = layout.mask_box
    assert (x0 < a[:, 0]).all() and (a[:, 0] < x1).all() and (y0 < a[:, 1]).all() and (a[:, 1] < y1).all()
    assert not np.allclose(a, rest)
    np.testing.assert_array_equal(lip_anchor(np.full((128, 128, 3), 90, np.uint8), rest), rest)
    state = AvatarState(textures=crop[None], crop_to_texture=np.eye(2, 3, dtype=np.float32)[None],
                        z_masked=np.zeros((1, 4, 4, 8), np.float32), z_ref=np.zeros((4, 4, 8), np.float32),
                        layout=layout, lip_anchor=a)
    np.testing.assert_array_equal(AvatarState.from_bytes(state.to_bytes()).lip_anchor, a)


def test_serving_settings_are_saved_beside_the_architecture(tmp_path):
    """serving.json holds sampling, calibration and articulation; config.json only the architecture; the
    pair round-trips exactly, a folder from before the split loads the same, and the model id is kept."""
    import dataclasses
    import json

    from avatar_service.model.generator import load_generator_config
    from avatar_service.runtime.models import model_id

    cfg = GeneratorConfig.tiny()
    cfg = dataclasses.replace(cfg, serving=dataclasses.replace(cfg.serving, articulation=1.75))
    path = FaceGenerator.random(cfg).save_pretrained(tmp_path / "m")
    arch = json.loads((path / "config.json").read_text())["generator"]
    assert "sampling" not in arch and "calibration" not in arch and "serving" not in arch
    assert "articulation" not in arch["audio"]
    assert json.loads((path / "serving.json").read_text())["articulation"] == 1.75
    assert load_generator_config(path) == cfg
    # a format-1 folder written before serving.json: the settings sat inside config.json
    old = json.loads(cfg.to_json())
    assert old["audio"]["articulation"] == 1.75 and old["sampling"]["default_steps"] == 2
    (path / "serving.json").unlink()
    (path / "config.json").write_text(json.dumps({"format_version": 1, "generator": old}))
    assert load_generator_config(path) == cfg and model_id(load_generator_config(path)) == model_id(cfg)
    assert model_id(GeneratorConfig.tiny()) == "avatarlab-face-tiny@daeb8828"  # the id before the split


def test_configs_saved_before_lip_maps_load_without_one():
    """A config.json written before the lip map existed must build the network its weights were trained
    for (no lip map), whatever the config it is read into has."""
    d = GeneratorConfig.tiny().to_dict()
    assert d["denoiser"]["lip_map"]["enabled"]
    del d["denoiser"]["lip_map"]
    old = GeneratorConfig.from_dict(d)
    assert not old.denoiser.lip_map.enabled
    assert FaceGenerator(old).denoiser.unet.conv_in.in_channels == 3 * old.autoencoder.latent_channels


def test_articulation_scales_the_predicted_lip_shape_only_when_serving(speech_16k):
    """`audio.articulation` multiplies the lip head's prediction on the serving path (tokens and lip-map
    offsets); the audio tokens and the training path (`encode`) are untouched."""
    import dataclasses

    cfg = GeneratorConfig.tiny()
    plain = FaceGenerator.random(cfg, seed=5).eval()
    plain.audio_encoder.lip_basis.copy_(torch.randn_like(plain.audio_encoder.lip_basis))  # as training sets it
    loud = FaceGenerator(dataclasses.replace(cfg, serving=dataclasses.replace(cfg.serving, articulation=2.0))).eval()
    loud.load_state_dict(plain.state_dict())
    windows = torch.from_numpy(clip_windows(speech_16k[:16000], 6, 25.0, cfg.feature_extractor(), cfg.window))
    with torch.no_grad():
        (t1, o1), (t2, o2) = plain.audio(windows), loud.audio(windows)
        assert o1.abs().max() > 1e-4
        torch.testing.assert_close(o2, 2 * o1)
        torch.testing.assert_close(t2[:, :-1], t1[:, :-1])
        assert (t2[:, -1] - t1[:, -1]).abs().max() > 1e-3  # the lip token carries the scaled shape
        torch.testing.assert_close(loud.audio_encoder.encode(windows)[1], plain.audio_encoder.encode(windows)[1])
