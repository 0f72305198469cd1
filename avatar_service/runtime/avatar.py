"""Per-avatar precompute (MuseTalk's real-time idea): everything that does not change with the audio
is computed once, when the avatar is created, so a frame costs only the denoiser and the decoder.

Spaces: *source* (the uploaded image/video), *texture* (the square face texture the client shows,
`texture_px` wide, a fixed window of the source), *crop* (the aligned face crop the model sees) and
*region* (the lower part of the crop the model redraws).
"""
from __future__ import annotations

import dataclasses
import functools
import io

import cv2
import numpy as np

from avatar_service.face.align import FaceLayout
from avatar_service.runtime.mouth_fit import MouthFit


@dataclasses.dataclass
class AvatarState:
    textures: np.ndarray  # (P, T, T, 3) uint8: the pose frames as the client sees them
    crop_to_texture: np.ndarray  # (P, 2, 3) float32: aligned-crop pixels -> texture pixels
    z_masked: np.ndarray  # (P, C, h, w) float32: latent of each pose frame's region, mouth masked
    z_ref: np.ndarray  # (C, h, w) float32: latent of the reference region (identity)
    layout: FaceLayout
    lip_anchor: np.ndarray | None = None  # (40, 2) crop-relative reference lips, for models with a lip map
    mouth_fit: MouthFit | None = None  # keeps the person's mouth width and lip thickness (runtime.calibration)
    meshes: np.ndarray | None = None  # (P, 478, 3) float32 face mesh of each texture, for the warp renderer
    # per-renderer precompute (runtime/renderer.py), built on first use and never persisted
    derived: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)

    @property
    def pose_count(self) -> int:
        return len(self.textures)

    @property
    def texture_px(self) -> int:
        return self.textures.shape[1]

    def pose_index(self, frame_index: int) -> int:
        """Ping-pong through the idle loop (0 1 2 .. P-1 P-2 .. 1 0 1 ..) so it never jumps."""
        p = self.pose_count
        if p == 1:
            return 0
        period = 2 * (p - 1)
        k = frame_index % period
        return k if k < p else period - k

    # -- compositing --------------------------------------------------------------------------------
    @functools.cached_property
    def _blend(self) -> list[tuple[tuple[int, int, int, int], np.ndarray, np.ndarray, np.ndarray]]:
        """Per pose: texture rect (x, y, w, h) the region lands in, region->rect affine, blend weights, and
        colour-match weights (redrawn by the model but not shown: where its colour cast is measured)."""
        r0 = self.layout.region_rows[0]
        soft = self.layout.region_mask(soft=True)
        ring = self.layout.region_mask() * (soft < 0.01)
        rh, rw = soft.shape
        out = []
        t = self.texture_px
        for m in self.crop_to_texture:
            a = m.astype(np.float64) @ np.array([[1, 0, 0], [0, 1, r0], [0, 0, 1]], np.float64)
            corners = np.array([[0, 0, 1], [rw, 0, 1], [0, rh, 1], [rw, rh, 1]], np.float64) @ a.T
            x0, y0 = np.floor(corners.min(0)).astype(int)
            x1, y1 = np.ceil(corners.max(0)).astype(int)
            x0, y0, x1, y1 = max(0, x0), max(0, y0), min(t, x1), min(t, y1)
            a_rect = a.copy()
            a_rect[:, 2] -= (x0, y0)
            size = (x1 - x0, y1 - y0)
            w = cv2.warpAffine(soft, a_rect, size, flags=cv2.INTER_LINEAR, borderValue=0)
            c = cv2.warpAffine(ring, a_rect, size, flags=cv2.INTER_NEAREST, borderValue=0)
            out.append(((x0, y0, x1 - x0, y1 - y0), a_rect.astype(np.float32), w[..., None], c[..., None]))
        return out

    def composite(self, pose: int, region: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]]:
        """region (3, H, W) float in [-1, 1] -> the full texture frame (T, T, 3) uint8 and the texture
        rectangle (x, y, w, h) it changed: outside it the frame is pose frame `pose` exactly. This is the
        renderer's interface to the session (frame plus changed rectangle, which delta frames use)."""
        (x, y, w, h), a_rect, weight, ring = self._blend[pose]
        frame = self.textures[pose].copy()
        if self.mouth_fit is not None:
            region = self.mouth_fit.apply(region, self.layout)
        rgb = np.clip((region.transpose(1, 2, 0) + 1) * 127.5, 0, 255).astype(np.float32)
        warped = cv2.warpAffine(rgb, a_rect, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        base = frame[y:y + h, x:x + w].astype(np.float32)
        n = float(ring.sum())
        if n > 0:  # remove the decoder's colour cast, measured where it redrew but is not shown
            warped += ((base - warped) * ring).sum(axis=(0, 1)) / n
        frame[y:y + h, x:x + w] = np.clip(base + weight * (warped - base) + 0.5, 0, 255).astype(np.uint8)
        return frame, (int(x), int(y), int(w), int(h))

    # -- persistence ------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        extra = {} if self.lip_anchor is None else {"lip_anchor": self.lip_anchor}
        if self.mouth_fit is not None:
            extra["mouth_fit"] = self.mouth_fit.to_array()
        if self.meshes is not None:
            extra["meshes"] = self.meshes
        np.savez(buf, textures=self.textures, crop_to_texture=self.crop_to_texture, z_masked=self.z_masked,
                 z_ref=self.z_ref, layout=np.frombuffer(repr(dataclasses.astuple(self.layout)).encode(), np.uint8), **extra)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "AvatarState":
        import ast

        with np.load(io.BytesIO(data)) as f:
            layout = FaceLayout(*ast.literal_eval(f["layout"].tobytes().decode()))
            return cls(textures=f["textures"], crop_to_texture=f["crop_to_texture"], z_masked=f["z_masked"],
                       z_ref=f["z_ref"], layout=layout, lip_anchor=f["lip_anchor"] if "lip_anchor" in f.files else None,
                       mouth_fit=MouthFit.from_array(f["mouth_fit"]) if "mouth_fit" in f.files else None,
                       meshes=f["meshes"] if "meshes" in f.files else None)


def composite_on_crops(crops: np.ndarray, regions: np.ndarray, layout: FaceLayout,
                       mouth_fit: MouthFit | None = None) -> np.ndarray:
    """Paste (T, 3, H, W) regions in [-1, 1] into (T, S, S, 3) aligned crops exactly as the server does
    (AvatarState.composite, with each crop as its own texture)."""
    eye = np.repeat(np.eye(2, 3, dtype=np.float32)[None], len(crops), 0)
    state = AvatarState(textures=np.asarray(crops), crop_to_texture=eye, z_masked=np.zeros((len(crops), 0)),
                        z_ref=np.zeros(0), layout=layout, mouth_fit=mouth_fit)
    return np.stack([state.composite(i, r)[0] for i, r in enumerate(regions)])


def masked_region(crop: np.ndarray, layout: FaceLayout) -> tuple[np.ndarray, np.ndarray]:
    """Aligned crop (S, S, 3) uint8 -> (region, masked region), each (3, H, W) float32 in [-1, 1].
    The masked region is flat grey under the whole mask box: no lip shape leaks (DiffTalk's warning)."""
    r0, r1 = layout.region_rows
    region = crop[r0:r1].astype(np.float32).transpose(2, 0, 1) / 127.5 - 1.0
    masked = region * (1.0 - layout.region_mask()[None])
    return region, masked


def lip_anchor(crop: np.ndarray, rest: np.ndarray | None) -> np.ndarray | None:
    """The reference crop's lip landmarks (40, 2), crop-relative, for a model with a lip map (`rest` is
    its average lips, else None: no anchor needed). Where mediapipe finds no face mesh (some stylised
    faces) the average lips stand in: the mouth then takes the usual place and width."""
    if rest is None:
        return None
    from avatar_service.face.lips import LipTracker

    tracker = LipTracker(static=True)
    try:
        lips, _ = tracker.measure(crop)
    finally:
        tracker.close()
    return (lips / crop.shape[1]).astype(np.float32) if np.isfinite(lips).all() else np.asarray(rest, np.float32).copy()


def lip_points(anchor: np.ndarray | None, offsets: np.ndarray | None, rest: np.ndarray | None) -> np.ndarray | None:
    """Where the lips should be, (B, 40, 2): the reference's lips (`anchor`, or the model's average
    `rest` when the avatar has none) moved by the audio's predicted offsets (B, 40, 2). None for
    models without a lip map (offsets None)."""
    if offsets is None:
        return None
    return (anchor if anchor is not None else rest)[None] + offsets
