"""Writing what people look at: mp4 with sound (PyAV), PNG images and sample grids."""
from __future__ import annotations

import os
import pathlib
from fractions import Fraction

import numpy as np
from PIL import Image


def write_mp4(path: str | os.PathLike, frames, fps: float, audio: np.ndarray | None = None,
              sample_rate_hz: int = 16000, crf: int = 20) -> pathlib.Path:
    """Frames (H, W, 3) uint8 RGB (any iterable; odd sizes lose their last row/column) and optional mono
    float audio -> H.264/AAC mp4."""
    import av

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = iter(frames)
    first = next(frames)
    h, w = first.shape[:2]
    with av.open(str(path), mode="w") as out:
        v = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        v.width, v.height = w - w % 2, h - h % 2
        v.pix_fmt = "yuv420p"
        v.options = {"crf": str(crf), "preset": "veryfast"}
        a = None
        if audio is not None:
            a = out.add_stream("aac", rate=sample_rate_hz, layout="mono")
        for img in _chain(first, frames):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img[: v.height, : v.width]), format="rgb24")
            out.mux(v.encode(vf))
        out.mux(v.encode())
        if a is not None:
            # the encoder wants fixed-size frames: feed it in its own frame size
            size = a.codec_context.frame_size or 1024
            pcm = np.clip(np.asarray(audio, np.float32), -1, 1)
            for i in range(0, len(pcm), size):
                chunk = pcm[i: i + size]
                if len(chunk) < size:
                    chunk = np.pad(chunk, (0, size - len(chunk)))
                af = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
                af.sample_rate = sample_rate_hz
                af.pts = i
                out.mux(a.encode(af))
            out.mux(a.encode())
    return path


def _chain(first, rest):
    yield first
    yield from rest


def grid(rows: list[list[np.ndarray]], pad: int = 2) -> np.ndarray:
    """rows of (H, W, 3) uint8 tiles (all the same size) -> one (H', W', 3) image, white gaps."""
    h, w = rows[0][0].shape[:2]
    cols = max(len(r) for r in rows)
    out = np.full((len(rows) * (h + pad) + pad, cols * (w + pad) + pad, 3), 255, np.uint8)
    for i, r in enumerate(rows):
        for j, tile in enumerate(r):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            out[y: y + h, x: x + w] = tile
    return out


def save_png(path: pathlib.Path, rgb: np.ndarray, scale: int = 1) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(rgb)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    img.save(path)
    return path
