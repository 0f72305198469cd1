"""Per-avatar mouth-width calibration: the generated mouth keeps the person's own width.

Measured on the held-out clips (docs/evaluation.md): the denoiser regresses mouth width towards its
training people's average, drawing narrow mouths 2-6 px too wide and wide ones too narrow, a bias
that is constant for a given face. So, once per avatar (MuseTalk's precompute idea), the generator
draws the reference's own pose with silent audio, mediapipe measures the corner-to-corner width of
what it drew and of the reference, and their ratio becomes a fixed horizontal rescale of the mouth,
centred on the reference's mouth and easing out before the blend's edge. In the spirit
of LivePortrait's lip retargeting, but in pixels: the per-frame cost is one `cv2.remap` of the region
with precomputed maps. Only width is corrected: height is the mouth opening, which the audio drives.
"""
from __future__ import annotations

import dataclasses
import functools
import logging

import cv2
import numpy as np

from avatar_service.face.align import FaceLayout
from avatar_service.model.config import CalibrationConfig

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class MouthWidthFit:
    """x' = cx + scale (x - cx) within half the radii of the mouth centre, easing (smoothstep) to the
    identity at the radii, so cheeks and jaw at the blend's edge never move. Crop-relative units."""
    cx: float
    cy: float
    scale: float
    radius_x: float
    radius_y: float

    def to_array(self) -> np.ndarray:
        return np.array(dataclasses.astuple(self), np.float64)

    @classmethod
    def from_array(cls, a: np.ndarray) -> "MouthWidthFit":
        return cls(*(float(v) for v in np.asarray(a).ravel()))

    @functools.lru_cache(maxsize=8)
    def maps(self, layout: FaceLayout) -> tuple[np.ndarray, np.ndarray]:
        """cv2.remap maps (H, W) float32 for the generated region: where each output pixel samples from."""
        h, w = layout.region_shape
        s = layout.crop_px
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        yc = y + layout.region_rows[0]  # region rows -> crop rows
        cx, cy = self.cx * s, self.cy * s
        reach = _ease(np.abs(x - cx) / (self.radius_x * s)) * _ease(np.abs(yc - cy) / (self.radius_y * s))
        source_x = cx + (x - cx) / self.scale  # inverse of the rescale
        return (x + reach * (source_x - x)).astype(np.float32), y

    def apply(self, region: np.ndarray, layout: FaceLayout) -> np.ndarray:
        """region (3, H, W) or (H, W, 3) float32 -> the same, rescaled about the mouth."""
        mx, my = self.maps(layout)
        chw = region.shape[0] == 3 and region.ndim == 3
        img = region.transpose(1, 2, 0) if chw else region
        out = cv2.remap(np.ascontiguousarray(img), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return out.transpose(2, 0, 1) if chw else out


def _ease(r: np.ndarray) -> np.ndarray:
    """1 up to r = 0.5, smoothstep down to 0 at r = 1."""
    t = np.clip(2 * r - 1, 0, 1)
    return 1 - t * t * (3 - 2 * t)


def corner_width(lips: np.ndarray) -> np.ndarray:
    """Mouth width (distance between mesh points 61 and 291) from (..., 40, 2) lip landmarks."""
    from avatar_service.data.lips import LIP_INDICES

    a, b = LIP_INDICES.index(61), LIP_INDICES.index(291)
    return np.linalg.norm(lips[..., b, :] - lips[..., a, :], axis=-1)


def fit_width(generated_lips: np.ndarray, reference_lips: np.ndarray, crop_px: int,
              config: CalibrationConfig = CalibrationConfig()) -> MouthWidthFit | None:
    """generated (K, 40, 2) and reference (40, 2) lips in crop pixels -> the rescale taking the generated
    width to the reference's; None when either was not measured or the ratio is implausible."""
    widths = corner_width(np.asarray(generated_lips, np.float64))
    widths = widths[np.isfinite(widths)]
    ref = np.asarray(reference_lips, np.float64)
    ref_w = float(corner_width(ref))
    if not len(widths) or not np.isfinite(ref_w) or ref_w <= 0:
        return None
    scale = ref_w / float(np.median(widths))
    if not 1 / config.max_ratio <= scale <= config.max_ratio:
        return None
    from avatar_service.data.lips import LIP_INDICES

    centre = (ref[LIP_INDICES.index(61)] + ref[LIP_INDICES.index(291)]) / 2 / crop_px
    r = config.reach * ref_w / crop_px
    return MouthWidthFit(float(centre[0]), float(centre[1]), float(scale), r, 0.8 * r)


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
                        tokens, cfg.sampling.default_steps, cfg.sampling.default_guidance,
                        lip_points=lip_points(anchor, offsets, backend.lip_rest))
    return backend.decode(z0)


def calibrate(backend, crop: np.ndarray, z_ref: np.ndarray, z_masked: np.ndarray,
              anchor: np.ndarray | None = None) -> MouthWidthFit | None:
    """The reference crop (S, S, 3) uint8 and its latents -> its MouthWidthFit, or None where mediapipe
    finds no mouth (many stylised faces) or calibration is off: the mouth is then shown as drawn."""
    cfg = backend.config
    if not cfg.calibration.enabled:
        return None
    try:
        import mediapipe  # noqa: F401  (installed by the Makefile; a bare `pip install .` lacks it)
    except ImportError:
        log.warning("mediapipe is not installed: mouth-width calibration is off (pip install --no-deps mediapipe==0.10.21)")
        return None
    regions = probe_regions(backend, z_ref, z_masked, anchor, cfg.calibration.probe_frames)
    return fit_regions(crop, regions, cfg.layout, cfg.calibration)


def fit_regions(crop: np.ndarray, regions: np.ndarray, layout: FaceLayout,
                config: CalibrationConfig = CalibrationConfig()) -> MouthWidthFit | None:
    """The rescale that gives mouths drawn into `crop`'s region (K, 3, H, W) the crop's own mouth width."""
    from avatar_service.data.lips import LipTracker
    from avatar_service.runtime.avatar import composite_on_crops

    tracker = LipTracker(static=True)
    try:
        reference, _ = tracker.measure(crop)
        if not np.isfinite(reference).all():
            return None
        crops = np.repeat(crop[None], len(regions), 0)
        fit, tried = None, []  # (log scale, log measured/reference width) per round
        # mediapipe's mesh reports width changes damped by its face prior (a 30% wider mouth measures
        # about 10% wider), so one ratio under-corrects: re-measure the rescaled mouth and solve for the
        # scale by the secant method (log-log). Reference and probe share the face and pose, so equal
        # measured widths mean equal widths in pixels.
        for _ in range(1 + config.refine_rounds):
            # measured on what the viewer would see: the regions composited as the server does
            drawn = np.stack([tracker.measure(f)[0] for f in composite_on_crops(crops, regions, layout, fit)])
            step = fit_width(drawn, reference, layout.crop_px, config)
            if step is None:
                return fit
            log_s = 0.0 if fit is None else float(np.log(fit.scale))
            tried.append((log_s, -float(np.log(step.scale))))
            if abs(tried[-1][1]) < 0.005:
                break
            nxt = log_s - tried[-1][1]  # plain ratio: right direction, too short a step
            if len(tried) > 1:
                (a, ga), (b, gb) = tried[-2], tried[-1]
                if (gb - ga) * (b - a) > 0:  # a wider mouth measures wider: the secant step is sound
                    nxt = b - gb * (b - a) / (gb - ga)
            bound = np.log(config.max_scale)
            fit = dataclasses.replace(step, scale=float(np.exp(np.clip(nxt, -bound, bound))))
            if abs(nxt) > bound and len(tried) > 1:
                break  # it wants more than the clamp allows: take the clamp
    finally:
        tracker.close()
    return fit
