"""Per-avatar mouth-width calibration (runtime.calibration), on a real portrait measured by mediapipe."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from avatar_service.data.lips import LipTracker
from avatar_service.face import FaceDetector, align_matrix, warp_to_crop
from avatar_service.face.align import FaceLayout
from avatar_service.model import FaceGenerator, GeneratorConfig
from avatar_service.model.config import CalibrationConfig
from avatar_service.runtime.avatar import AvatarState, composite_on_crops, masked_region, prepare_avatar
from avatar_service.runtime.backend import TorchBackend
from avatar_service.runtime.calibration import MouthWidthFit, corner_width, fit_regions, fit_width
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
    ref_w = corner_width(measure(crop[None])[0])
    region = masked_region(crop, LAYOUT)[0]
    # the identity fit, centred on this mouth, turned into the model's bias
    bias = dataclasses.replace(fit_width(measure(crop[None]), measure(crop[None])[0], LAYOUT.crop_px), scale=drawn_scale)
    drawn = bias.apply(region, LAYOUT)[None]
    drawn_w = corner_width(measure(composite_on_crops(crop[None], drawn, LAYOUT))[0])
    assert abs(drawn_w / ref_w - 1) > 0.05

    fit = fit_regions(crop, drawn, LAYOUT)
    assert (fit.scale < 1) == (drawn_scale > 1)
    shown = composite_on_crops(crop[None], drawn, LAYOUT, mouth_fit=fit)
    assert corner_width(measure(shown)[0]) == pytest.approx(ref_w, rel=0.03)
    # one measured ratio alone under-corrects (mediapipe damps width changes): the refinement is needed
    once = fit_regions(crop, drawn, LAYOUT, CalibrationConfig(refine_rounds=0))
    assert abs(np.log(once.scale)) < abs(np.log(fit.scale))

    # the rescale moves the mouth corners by pixels and nothing beyond its reach
    mx, _ = fit.maps(LAYOUT)
    shift = np.abs(mx - np.arange(mx.shape[1])[None])
    row, cx, w = int(fit.cy * 128) - LAYOUT.region_rows[0], fit.cx * 128, ref_w
    assert shift[row, int(cx + w / 2)] > 1.5 and shift[row, int(cx - w / 2)] > 1.5
    assert shift[row, int(cx + 1.3 * w)] < 0.01 and shift[row, int(cx - 1.3 * w)] < 0.01
    assert (np.diff(mx, axis=1) > 0).all()  # no fold: the warp keeps pixel order


def test_no_fit_from_missing_or_implausible_measurements():
    ref = np.zeros((40, 2), np.float32)
    ref[:, 0] = np.linspace(50, 78, 40)  # 28 px wide, corners included
    ref[:, 1] = 100
    assert fit_width(np.full((2, 40, 2), np.nan), ref, 128) is None  # nothing measured on the drawn mouth
    assert fit_width(ref[None], np.full((40, 2), np.nan), 128) is None  # no mouth on the reference
    assert fit_width((ref * [0.5, 1])[None], ref, 128) is None  # half as wide: a failed measurement, not a bias
    assert fit_width((ref * [0.5, 1])[None], ref, 128, CalibrationConfig(max_ratio=2.5)) is not None


def test_fit_persists_with_the_avatar_and_is_skipped_when_off(portrait):
    cfg = GeneratorConfig.tiny()
    off = dataclasses.replace(cfg, calibration=CalibrationConfig(enabled=False))
    state = prepare_avatar(TorchBackend(FaceGenerator.random(off, seed=1)), [portrait], 96)
    assert state.mouth_fit is None
    fit = MouthWidthFit(0.5, 0.8, 0.9, 0.25, 0.2)
    state = dataclasses.replace(state, mouth_fit=fit)
    assert AvatarState.from_bytes(state.to_bytes()).mouth_fit == fit
    # and a config written before calibration existed reads with it on
    d = cfg.to_dict()
    del d["calibration"]
    assert GeneratorConfig.from_dict(d).calibration.enabled


def test_rescale_is_clamped_where_the_drawn_mouth_is_far_too_narrow(crop):
    """A mouth drawn at 60% of the person's width measures plausibly (mediapipe damps it) but would need
    a larger stretch than the face takes: the fit is the clamp, max_scale, not nothing."""
    ref = measure(crop[None])[0]
    bias = dataclasses.replace(fit_width(ref[None], ref, LAYOUT.crop_px), scale=0.6)
    drawn = bias.apply(masked_region(crop, LAYOUT)[0], LAYOUT)[None]
    config = CalibrationConfig(max_scale=1.3)
    fit = fit_regions(crop, drawn, LAYOUT, config)
    assert fit is not None and fit.scale == pytest.approx(1.3)
