"""Per-avatar mouth calibration (runtime.calibration), on a real portrait measured by mediapipe."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from avatar_service.face.lips import LipTracker
from avatar_service.face import FaceDetector, align_matrix, warp_to_crop
from avatar_service.face.align import FaceLayout
from avatar_service.model import FaceGenerator, GeneratorConfig
from avatar_service.model.config import CalibrationConfig
from avatar_service.runtime.avatar import AvatarState, composite_on_crops, masked_region
from avatar_service.runtime.avatar_setup import prepare_avatar
from avatar_service.runtime.backend import TorchBackend
from avatar_service.runtime.calibration import MouthFit, _points, fit_regions, fit_size, mouth_size
from conftest import ASSETS

LAYOUT = FaceLayout(crop_px=128)


@pytest.fixture(scope="module")
def portrait():
    return np.asarray(Image.open(ASSETS / "astronaut.png").convert("RGB"))


@pytest.fixture(scope="module")
def crop(portrait):
    return warp_to_crop(portrait, align_matrix(FaceDetector().one_face(portrait).landmarks, LAYOUT), LAYOUT)


def measure(frames):
    tracker = LipTracker(static=True)
    try:
        return np.stack([tracker.measure(f)[0] for f in frames])
    finally:
        tracker.close()


@pytest.mark.parametrize("drawn_scale", [1.3, 0.8])
def test_fit_gives_a_mouth_drawn_too_wide_or_narrow_the_persons_width(crop, drawn_scale):
    """The portrait's own mouth, stretched or squeezed (what the model does to unseen people), is measured,
    fitted and rescaled back to the reference's width within 3%; beyond the rescale's reach nothing moves."""
    ref = measure(crop[None])[0]
    ref_w = mouth_size(ref)[0]
    region = masked_region(crop, LAYOUT)[0]
    # the identity fit, centred on this mouth, turned into the model's bias
    identity = fit_size(ref[None], ref, LAYOUT.crop_px)
    assert (identity.scale_x, identity.scale_y) == pytest.approx((1.0, 1.0))
    drawn = dataclasses.replace(identity, scale_x=drawn_scale).apply(region, LAYOUT)[None]
    drawn_w = mouth_size(measure(composite_on_crops(crop[None], drawn, LAYOUT))[0])[0]
    assert abs(drawn_w / ref_w - 1) > 0.05

    fit = fit_regions(crop, drawn, LAYOUT)
    assert (fit.scale_x < 1) == (drawn_scale > 1)
    shown = composite_on_crops(crop[None], drawn, LAYOUT, mouth_fit=fit)
    assert mouth_size(measure(shown)[0])[0] == pytest.approx(ref_w, rel=0.03)
    # one measured ratio alone under-corrects (mediapipe damps width changes): the refinement is needed
    once = fit_regions(crop, drawn, LAYOUT, CalibrationConfig(refine_rounds=0))
    assert abs(np.log(once.scale_x)) < abs(np.log(fit.scale_x))

    # the rescale moves the mouth corners by pixels and nothing beyond its reach
    mx, my = fit.maps(LAYOUT)
    shift = np.abs(mx - np.arange(mx.shape[1])[None])
    row, cx = int(fit.cy * 128) - LAYOUT.region_rows[0], fit.cx * 128
    assert shift[row, int(cx + ref_w / 2)] > 1.5 and shift[row, int(cx - ref_w / 2)] > 1.5
    assert shift[row, int(cx + 1.3 * ref_w)] < 0.01 and shift[row, int(cx - 1.3 * ref_w)] < 0.01
    assert (np.diff(mx, axis=1) > 0).all() and (np.diff(my, axis=0) > 0).all()  # no fold


def test_fit_thickens_lips_drawn_too_thin(crop):
    """Lips squeezed to 80% of their height measure thinner; the fit stretches them back: scale_y > 1
    and the measured thickness moves most of the way back to the reference's."""
    ref = measure(crop[None])[0]
    identity = fit_size(ref[None], ref, LAYOUT.crop_px)
    thin = dataclasses.replace(identity, scale_y=0.8).apply(masked_region(crop, LAYOUT)[0], LAYOUT)[None]
    thin_t = mouth_size(measure(composite_on_crops(crop[None], thin, LAYOUT))[0])[1]
    ref_t = mouth_size(ref)[1]
    assert thin_t < 0.95 * ref_t
    fit = fit_regions(crop, thin, LAYOUT)
    assert fit.scale_y > 1.1
    shown_t = mouth_size(measure(composite_on_crops(crop[None], thin, LAYOUT, mouth_fit=fit))[0])[1]
    assert abs(shown_t - ref_t) < 0.5 * abs(thin_t - ref_t)


def test_no_fit_from_missing_or_implausible_measurements():
    rng = np.random.default_rng(0)
    ref = np.stack([np.linspace(50, 78, 40), 100 + rng.uniform(-6, 6, 40)], axis=-1)  # 28 px wide
    ref[_points(0)] = (64, 94)  # outer lips 12 px apart, inner 2: 10 px of lip
    ref[_points(17)] = (64, 106)
    ref[_points(13)] = (64, 99)
    ref[_points(14)] = (64, 101)
    centre = np.array([64, 100])
    half_wide = centre + (ref - centre) * [0.5, 1]
    assert fit_size(ref[None], ref, 128) is not None
    assert fit_size(np.full((2, 40, 2), np.nan), ref, 128) is None  # nothing measured on the drawn mouth
    assert fit_size(ref[None], np.full((40, 2), np.nan), 128) is None  # no mouth on the reference
    assert fit_size(half_wide[None], ref, 128) is None  # half as wide: a failed measurement, not a bias
    assert fit_size(half_wide[None], ref, 128, CalibrationConfig(max_ratio=2.5)) is not None


def test_fit_persists_with_the_avatar_and_is_skipped_when_off(portrait):
    cfg = GeneratorConfig.tiny()
    off = dataclasses.replace(cfg, serving=dataclasses.replace(cfg.serving, calibration=CalibrationConfig(enabled=False)))
    state = prepare_avatar(TorchBackend(FaceGenerator.random(off, seed=1)), [portrait], 96)
    assert state.mouth_fit is None
    fit = MouthFit(0.5, 0.8, 0.9, 1.1, 0.25, 0.2)
    state = dataclasses.replace(state, mouth_fit=fit)
    assert AvatarState.from_bytes(state.to_bytes()).mouth_fit == fit
    # and a config written before calibration existed reads with it on
    d = cfg.to_dict()
    del d["serving"]["calibration"]
    assert GeneratorConfig.from_dict(d).serving.calibration.enabled


def test_rescale_is_clamped_where_the_drawn_mouth_is_far_too_narrow(crop):
    """A mouth drawn at 60% of the person's width measures plausibly (mediapipe damps it) but would need
    a larger stretch than the face takes: the fit is the clamp, max_scale, not nothing."""
    ref = measure(crop[None])[0]
    bias = dataclasses.replace(fit_size(ref[None], ref, LAYOUT.crop_px), scale_x=0.6)
    drawn = bias.apply(masked_region(crop, LAYOUT)[0], LAYOUT)[None]
    config = CalibrationConfig(max_scale=1.3)
    fit = fit_regions(crop, drawn, LAYOUT, config)
    assert fit is not None and fit.scale_x == pytest.approx(1.3)
