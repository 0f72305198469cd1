"""Per-session frame output: scale the face texture, convert the pixel format, and in delta mode send
only the rectangle that changed since the previous frame."""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from avatar_service.errors import InvalidArgument

RGBA8, RGB8, JPEG = 1, 2, 3
FULL, DELTA = 1, 2


@dataclasses.dataclass(frozen=True)
class VideoSpec:
    fps: int
    width: int
    height: int
    pixel_format: int
    jpeg_quality: int
    frame_mode: int

    @classmethod
    def from_options(cls, v, default_px: int) -> "VideoSpec":
        """Validate a pb.VideoOptions; 0/UNSPECIFIED take defaults."""
        fps = v.fps or 25
        if not 1 <= fps <= 60:
            raise InvalidArgument(f"video.fps must be 1 to 60, got {v.fps}")
        w, h = v.width_px or default_px, v.height_px or default_px
        if not (16 <= w <= 1024 and 16 <= h <= 1024):
            raise InvalidArgument(f"video size must be 16 to 1024 pixels a side, got {v.width_px}x{v.height_px}")
        fmt = v.pixel_format or RGBA8
        if fmt not in (RGBA8, RGB8, JPEG):
            raise InvalidArgument(f"unknown video.pixel_format {v.pixel_format}")
        q = v.jpeg_quality or 85
        if not 1 <= q <= 100:
            raise InvalidArgument(f"video.jpeg_quality must be 1 to 100, got {v.jpeg_quality}")
        mode = v.frame_mode or FULL
        if mode not in (FULL, DELTA):
            raise InvalidArgument(f"unknown video.frame_mode {v.frame_mode}")
        return cls(fps, w, h, fmt, q, mode)


class FrameEncoder:
    """Not thread-safe; the engine calls `encode` for one session's frames in order."""

    def __init__(self, spec: VideoSpec):
        self.spec = spec
        self._prev: np.ndarray | None = None

    def scale(self, texture: np.ndarray) -> np.ndarray:
        s = self.spec
        if texture.shape[1] == s.width and texture.shape[0] == s.height:
            return texture
        interp = cv2.INTER_AREA if texture.shape[1] > s.width else cv2.INTER_LINEAR
        return cv2.resize(texture, (s.width, s.height), interpolation=interp)

    def pixels(self, rgb: np.ndarray) -> bytes:
        if self.spec.pixel_format == RGB8:
            return np.ascontiguousarray(rgb).tobytes()
        if self.spec.pixel_format == RGBA8:
            rgba = np.empty(rgb.shape[:2] + (4,), np.uint8)
            rgba[..., :3] = rgb
            rgba[..., 3] = 255
            return rgba.tobytes()
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, self.spec.jpeg_quality])
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        return buf.tobytes()

    def base(self, texture: np.ndarray) -> tuple[tuple[int, int, int, int], bytes]:
        """The whole idle image; in delta mode also the surface the first delta is drawn on."""
        img = self.scale(texture)
        self._prev = img
        return (0, 0, img.shape[1], img.shape[0]), self.pixels(img)

    def encode(self, texture: np.ndarray) -> tuple[tuple[int, int, int, int], bytes]:
        img = self.scale(texture)
        if self.spec.frame_mode == FULL or self._prev is None:
            self._prev = img
            return (0, 0, img.shape[1], img.shape[0]), self.pixels(img)
        changed = np.any(img != self._prev, axis=2)
        self._prev = img
        rows, cols = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
        if len(rows) == 0:
            return (0, 0, 0, 0), b""
        y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        return (int(x0), int(y0), int(x1 - x0), int(y1 - y0)), self.pixels(img[y0:y1, x0:x1])
