"""The per-session frame encoder on its own: pixel formats, full and delta frames, and the changed
rectangle from compositing giving the very bytes a whole-frame search gives."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from avatar_service.runtime.frame_encoder import EMPTY, FrameEncoder, FrameMode, PixelFormat, VideoSpec


def spec(size=64, fmt=PixelFormat.RGB8, mode=FrameMode.DELTA):
    return VideoSpec(fps=25, width=size, height=size, pixel_format=fmt, jpeg_quality=90, frame_mode=mode)


def textures(n=6, side=96, seed=0):
    """A pose texture and frames that redraw only a rectangle of it, as compositing does."""
    rng = np.random.default_rng(seed)
    pose = rng.integers(0, 256, (side, side, 3), np.uint8)
    out = []
    for _ in range(n):
        x, y = rng.integers(10, 50, 2)
        w, h = rng.integers(5, 40, 2)
        f = pose.copy()
        f[y:y + h, x:x + w] = rng.integers(0, 256, (h, w, 3), np.uint8)
        out.append((f, (int(x), int(y), int(w), int(h))))
    return pose, out


@pytest.mark.parametrize("size", [96, 64, 150])  # same size, downscaled, upscaled
def test_changed_rect_gives_the_bytes_of_a_whole_frame_search(size):
    pose, frames = textures()
    hinted, searched = FrameEncoder(spec(size)), FrameEncoder(spec(size))
    hinted.base(pose)
    searched.base(pose)
    for tex, rect in frames:
        assert hinted.encode(tex, 0, rect) == searched.encode(tex)


def test_delta_is_the_bounding_box_of_what_changed():
    pose, _ = textures()
    enc = FrameEncoder(spec(96))
    (x, y, w, h), base = enc.base(pose)
    assert (x, y, w, h) == (0, 0, 96, 96) and len(base) == 96 * 96 * 3
    f = pose.copy()
    f[20:30, 40:45] = 255 - f[20:30, 40:45]
    rect, data = enc.encode(f, 0, (35, 15, 20, 20))
    assert rect == (40, 20, 5, 10)
    assert data == f[20:30, 40:45].tobytes()
    assert enc.encode(f, 0, (35, 15, 20, 20)) == (EMPTY, b"")  # the same frame again: nothing to send


def test_a_new_pose_frame_is_searched_whole():
    pose, _ = textures()
    enc = FrameEncoder(spec(96))
    enc.base(pose)
    other = pose.copy()
    other[0, 0] = 255 - other[0, 0]  # differs outside the changed rect claimed for pose 1
    rect, _ = enc.encode(other, 1, (40, 40, 5, 5))
    assert rect == (0, 0, 1, 1)


def test_full_mode_and_pixel_formats():
    pose, frames = textures(1)
    tex, rect = frames[0]
    rgba = FrameEncoder(spec(96, PixelFormat.RGBA8, FrameMode.FULL))
    rgba.base(pose)
    r, data = rgba.encode(tex, 0, rect)
    px = np.frombuffer(data, np.uint8).reshape(96, 96, 4)
    assert r == (0, 0, 96, 96) and (px[..., 3] == 255).all() and np.array_equal(px[..., :3], tex)
    smooth = np.zeros((96, 96, 3), np.uint8)
    smooth[..., 0] = np.linspace(0, 255, 96)[None, :]  # red across, green down, blue flat: channel order shows
    smooth[..., 1] = np.linspace(0, 255, 96)[:, None]
    smooth[..., 2] = 60
    jpeg = FrameEncoder(spec(96, PixelFormat.JPEG, FrameMode.FULL))
    _, data = jpeg.encode(smooth, 0, rect)
    back = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    assert back.shape == smooth.shape and np.abs(back.astype(int) - smooth).mean() < 3
