"""Per-session frame output: scale the face texture, convert the pixel format, and in delta mode send
only the rectangle that changed since the previous frame.

Runs in a worker thread per session (runtime/session.py), never on the model thread. The compositor
says which texture rectangle a frame changed (AvatarState.composite), so the delta is searched only
inside it rather than over the whole frame."""
from __future__ import annotations

import dataclasses
import enum

import cv2
import numpy as np

Rect = tuple[int, int, int, int]  # x, y, width, height
EMPTY: Rect = (0, 0, 0, 0)


class PixelFormat(enum.Enum):
    RGBA8 = "rgba8"
    RGB8 = "rgb8"
    JPEG = "jpeg"


class FrameMode(enum.Enum):
    FULL = "full"  # every frame whole
    DELTA = "delta"  # a base frame, then only the rectangle that changed


@dataclasses.dataclass(frozen=True)
class VideoSpec:
    """What a session sends; validated where the request is read (server/translate.py)."""
    fps: int = 25
    width: int = 256
    height: int = 256
    pixel_format: PixelFormat = PixelFormat.RGBA8
    jpeg_quality: int = 85
    frame_mode: FrameMode = FrameMode.FULL


def union(a: Rect, b: Rect) -> Rect:
    if not a[2] or not a[3]:
        return b
    if not b[2] or not b[3]:
        return a
    x0, y0 = min(a[0], b[0]), min(a[1], b[1])
    x1, y1 = max(a[0] + a[2], b[0] + b[2]), max(a[1] + a[3], b[1] + b[3])
    return x0, y0, x1 - x0, y1 - y0


class FrameEncoder:
    """Not thread-safe; one session's frames are encoded in order."""

    def __init__(self, spec: VideoSpec):
        self.spec = spec
        self._prev: np.ndarray | None = None
        self._prev_pose: int | None = None  # the pose frame the previous frame was drawn on ...
        self._prev_changed: Rect = EMPTY  # ... and the texture rectangle it changed there

    def scale(self, texture: np.ndarray) -> np.ndarray:
        s = self.spec
        if texture.shape[1] == s.width and texture.shape[0] == s.height:
            return texture
        interp = cv2.INTER_AREA if texture.shape[1] > s.width else cv2.INTER_LINEAR
        return cv2.resize(texture, (s.width, s.height), interpolation=interp)

    def pixels(self, rgb: np.ndarray) -> bytes:
        if self.spec.pixel_format == PixelFormat.RGB8:
            return np.ascontiguousarray(rgb).tobytes()
        if self.spec.pixel_format == PixelFormat.RGBA8:
            rgba = np.empty(rgb.shape[:2] + (4,), np.uint8)
            rgba[..., :3] = rgb
            rgba[..., 3] = 255
            return rgba.tobytes()
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, self.spec.jpeg_quality])
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        return buf.tobytes()

    def base(self, texture: np.ndarray, pose: int = 0) -> tuple[Rect, bytes]:
        """The whole idle image (pose frame `pose`); in delta mode also the surface the first delta is drawn on."""
        img = self.scale(texture)
        self._prev, self._prev_pose, self._prev_changed = img, pose, EMPTY
        return (0, 0, img.shape[1], img.shape[0]), self.pixels(img)

    def encode(self, texture: np.ndarray, pose: int | None = None, changed: Rect | None = None) -> tuple[Rect, bytes]:
        """`texture` is pose frame `pose` with only texture rectangle `changed` redrawn (None: unknown,
        search the whole frame)."""
        img = self.scale(texture)
        prev, window = self._prev, self._window(texture.shape, pose, changed)
        self._prev, self._prev_pose, self._prev_changed = img, pose, changed if changed is not None else EMPTY
        if self.spec.frame_mode == FrameMode.FULL or prev is None:
            return (0, 0, img.shape[1], img.shape[0]), self.pixels(img)
        wx, wy, ww, wh = window
        diff = np.any(img[wy:wy + wh, wx:wx + ww] != prev[wy:wy + wh, wx:wx + ww], axis=2)
        rows, cols = np.flatnonzero(diff.any(axis=1)), np.flatnonzero(diff.any(axis=0))
        if len(rows) == 0:
            return EMPTY, b""
        y0, y1, x0, x1 = wy + rows[0], wy + rows[-1] + 1, wx + cols[0], wx + cols[-1] + 1
        return (int(x0), int(y0), int(x1 - x0), int(y1 - y0)), self.pixels(img[y0:y1, x0:x1])

    def _window(self, shape, pose: int | None, changed: Rect | None) -> Rect:
        """Output rectangle outside which this frame equals the previous one."""
        w, h = self.spec.width, self.spec.height
        if changed is None or pose is None or pose != self._prev_pose:
            return 0, 0, w, h
        x, y, cw, ch = union(changed, self._prev_changed)
        if not cw or not ch:
            return EMPTY
        sx, sy = w / shape[1], h / shape[0]
        m = 2  # resampling reads neighbouring texels: widen by two output pixels
        x0, y0 = max(0, int(np.floor(x * sx)) - m), max(0, int(np.floor(y * sy)) - m)
        x1, y1 = min(w, int(np.ceil((x + cw) * sx)) + m), min(h, int(np.ceil((y + ch) * sy)) + m)
        return x0, y0, max(0, x1 - x0), max(0, y1 - y0)
