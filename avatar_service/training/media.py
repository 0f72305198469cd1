"""Sample grids (PNG) and short videos with sound (PyAV), for looking at a run by eye."""
from __future__ import annotations

import pathlib

import av
import numpy as np
from PIL import Image


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


def write_mp4(path: pathlib.Path, frames: np.ndarray, fps: float, audio: np.ndarray | None = None,
              sample_rate: int = 16000) -> pathlib.Path:
    """frames (T, H, W, 3) uint8 RGB (even H and W), audio mono float32 -> H.264 + AAC mp4."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=int(round(fps)))
        vs.width, vs.height, vs.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        vs.options = {"crf": "18", "preset": "fast"}
        aus = None
        if audio is not None:
            aus = out.add_stream("aac", rate=sample_rate, layout="mono")
        for f in frames:
            out.mux(vs.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")))
        out.mux(vs.encode(None))
        if aus is not None:
            # The encoder wants fixed-size frames; feed it in its own frame size.
            size = aus.codec_context.frame_size or 1024
            pcm = np.clip(audio.astype(np.float32), -1, 1)
            for i in range(0, len(pcm), size):
                chunk = pcm[i: i + size]
                if len(chunk) < size:
                    chunk = np.pad(chunk, (0, size - len(chunk)))
                af = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
                af.sample_rate = sample_rate
                af.pts = i
                out.mux(aus.encode(af))
            out.mux(aus.encode(None))
    return path
