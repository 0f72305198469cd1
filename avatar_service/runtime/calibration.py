"""Per-avatar mouth calibration: the generated mouth keeps the person's own width and lip thickness.

Measured on the held-out clips (docs/evaluation.md): the denoiser regresses the mouth towards its
training people's average, drawing narrow mouths 2-6 px too wide and wide ones too narrow, and lips
thinner than most people's, a bias that is constant for a given face. So, once per avatar (MuseTalk's
precompute idea), the generator draws the reference's own pose with silent audio, mediapipe measures
what it drew and the reference, and the ratios become a fixed rescale of the mouth about its centre
(horizontal: corner-to-corner width; vertical: lip thickness, outer height minus the inner gap, which
does not depend on how open the mouth is), easing out before the blend's edge. In the spirit of
LivePortrait's lip retargeting, but in pixels: the per-frame cost is one `cv2.remap` of the region with
precomputed maps.
"""
from __future__ import annotations

import dataclasses
import logging

import numpy as np

from avatar_service.face.align import FaceLayout
from avatar_service.model.config import CalibrationConfig
from avatar_service.runtime.mouth_fit import MouthFit

log = logging.getLogger(__name__)


def _points(*mesh_ids: int) -> list[int]:
    from avatar_service.face.lips import LIP_INDICES

    return [LIP_INDICES.index(i) for i in mesh_ids]


def mouth_size(lips: np.ndarray) -> np.ndarray:
    """(..., 40, 2) lip landmarks -> (..., 2): width (corners 61-291) and lip thickness (outer height
    0-17 minus the inner gap 13-14: the lips themselves, whatever the opening)."""
    left, right, top, bottom, inner_top, inner_bottom = _points(61, 291, 0, 17, 13, 14)
    d = lambda a, b: np.linalg.norm(lips[..., a, :] - lips[..., b, :], axis=-1)  # noqa: E731
    return np.stack([d(left, right), d(top, bottom) - d(inner_top, inner_bottom)], axis=-1)


def fit_size(generated_lips: np.ndarray, reference_lips: np.ndarray, crop_px: int,
             config: CalibrationConfig = CalibrationConfig()) -> MouthFit | None:
    """generated (K, 40, 2) and reference (40, 2) lips in crop pixels -> the rescale taking the generated
    mouth's median size to the reference's; None when either was not measured or a ratio is implausible."""
    sizes = mouth_size(np.asarray(generated_lips, np.float64))
    sizes = sizes[np.isfinite(sizes).all(axis=-1) & (sizes > 0).all(axis=-1)]
    ref = np.asarray(reference_lips, np.float64)
    ref_size = mouth_size(ref)
    if not len(sizes) or not np.isfinite(ref_size).all() or (ref_size <= 0).any():
        return None
    scale = ref_size / np.median(sizes, axis=0)
    if ((scale < 1 / config.max_ratio) | (scale > config.max_ratio)).any():
        return None
    left, right = _points(61, 291)
    centre = (ref[left] + ref[right]) / 2 / crop_px
    r = config.reach * ref_size[0] / crop_px
    return MouthFit(float(centre[0]), float(centre[1]), float(scale[0]), float(scale[1]), r, 0.8 * r)


def probe_regions(backend, z_ref: np.ndarray, z_masked: np.ndarray, anchor: np.ndarray | None,
                  frames: int) -> np.ndarray:
    """The generator's silent mouth on the reference pose, one noise seed per frame: (K, 3, H, W)."""
    from avatar_service.model.features import clip_windows
    from avatar_service.runtime.avatar import lip_points
    from avatar_service.runtime.sampler import sample_latents

    cfg = backend.config
    fps = 25.0
    silence = np.zeros(cfg.mel.sample_rate_hz, np.float32)  # 1 s: whole windows for the probe frames
    tokens, offsets = backend.audio(clip_windows(silence, frames, fps, cfg.feature_extractor(), cfg.window))
    noise = np.stack([np.random.default_rng(k).standard_normal(cfg.latent_shape) for k in range(frames)]).astype(np.float32)
    z0 = sample_latents(backend, noise, np.repeat(z_masked[None], frames, 0), np.repeat(z_ref[None], frames, 0),
                        tokens, cfg.serving.sampling.default_steps, cfg.serving.sampling.default_guidance,
                        lip_points=lip_points(anchor, offsets, backend.lip_rest))
    return backend.decode(z0)


def calibrate(backend, crop: np.ndarray, z_ref: np.ndarray, z_masked: np.ndarray,
              anchor: np.ndarray | None = None) -> MouthFit | None:
    """The reference crop (S, S, 3) uint8 and its latents -> its MouthFit, or None where mediapipe finds
    no mouth (many stylised faces) or calibration is off: the mouth is then shown as drawn."""
    cfg = backend.config
    if not cfg.serving.calibration.enabled:
        return None
    try:
        import mediapipe  # noqa: F401  (installed by the Makefile; a bare `pip install .` lacks it)
    except ImportError:
        log.warning("mediapipe is not installed: mouth calibration is off (pip install --no-deps mediapipe==0.10.21)")
        return None
    regions = probe_regions(backend, z_ref, z_masked, anchor, cfg.serving.calibration.probe_frames)
    return fit_regions(crop, regions, cfg.layout, cfg.serving.calibration)


def fit_regions(crop: np.ndarray, regions: np.ndarray, layout: FaceLayout,
                config: CalibrationConfig = CalibrationConfig()) -> MouthFit | None:
    """The rescale that gives mouths drawn into `crop`'s region (K, 3, H, W) the crop's own mouth size."""
    from avatar_service.face.lips import LipTracker
    from avatar_service.runtime.avatar import composite_on_crops

    tracker = LipTracker(static=True)
    try:
        reference, _ = tracker.measure(crop)
        if not np.isfinite(reference).all():
            return None
        crops = np.repeat(crop[None], len(regions), 0)
        bound = np.log(config.max_scale)
        fit, tried = None, []  # per round: (log scale_x, log measured/reference width)
        # Width: mediapipe's mesh reports size changes damped by its face prior (a 30% wider mouth
        # measures about 10% wider), so one ratio under-corrects: re-measure the rescaled mouth and solve
        # for the scale by the secant method (log-log). Reference and probe share the face and pose, so
        # equal measured widths mean equal widths in pixels. Thickness: the first ratio, kept (its
        # measurement moves with the width and, on open grins, with the teeth: a solve can wander).
        for _ in range(1 + config.refine_rounds):
            # measured on what the viewer would see: the regions composited as the server does
            drawn = np.stack([tracker.measure(f)[0] for f in composite_on_crops(crops, regions, layout, fit)])
            step = fit_size(drawn, reference, layout.crop_px, config)
            if step is None:
                return fit
            log_s = 0.0 if fit is None else float(np.log(fit.scale_x))
            if fit is None:  # first round, measured as drawn: its thickness ratio is the one kept
                fit = dataclasses.replace(step, scale_y=float(np.clip(step.scale_y, 1 / config.max_scale, config.max_scale)))
            tried.append((log_s, -float(np.log(step.scale_x))))
            if abs(tried[-1][1]) < 0.005:
                break
            nxt = log_s - tried[-1][1]  # plain ratio: right direction, too short a step
            if len(tried) > 1:
                (a, ga), (b, gb) = tried[-2], tried[-1]
                if (gb - ga) * (b - a) > 0:  # a wider mouth measures wider: the secant step is sound
                    nxt = b - gb * (b - a) / (gb - ga)
            fit = dataclasses.replace(fit, scale_x=float(np.exp(np.clip(nxt, -bound, bound))))
            if abs(nxt) > bound and len(tried) > 1:
                break  # it wants more than the clamp allows: take the clamp
    finally:
        tracker.close()
    return fit
