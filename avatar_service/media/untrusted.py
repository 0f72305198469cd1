"""Decoding untrusted uploads (images, idle videos) and audio files, with limits and clear errors (PyAV, no shell calls)."""
from __future__ import annotations

import io
import os
from fractions import Fraction
from typing import Callable

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError


class MediaError(ValueError):
    """Unreadable, corrupt or unsupported media; the message says which."""


class MediaTooLarge(MediaError):
    """Within the rules of the format but over a configured limit."""


def decode_image(data: bytes, max_pixels: int) -> np.ndarray:
    """PNG/JPEG/WebP bytes -> (H, W, 3) uint8 RGB, EXIF orientation applied, alpha composited on grey."""
    if not data:
        raise MediaError("image is empty")
    Image.MAX_IMAGE_PIXELS = None  # our own limit below, with a clear message, replaces PIL's warning
    try:
        img = Image.open(io.BytesIO(data))
        if img.format not in ("PNG", "JPEG", "WEBP", "BMP"):
            raise MediaError(f"unsupported image format {img.format}: send PNG or JPEG")
        w, h = img.size
        if w * h > max_pixels:
            raise MediaTooLarge(f"image is {w}x{h} = {w * h} pixels; the limit is {max_pixels}")
        img = ImageOps.exif_transpose(img)
        img.load()
    except MediaError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise MediaError(f"image could not be decoded ({type(e).__name__}): send an intact PNG or JPEG") from None
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        bg = Image.new("RGB", img.size, (128, 128, 128))
        bg.paste(img.convert("RGBA"), mask=img.convert("RGBA").split()[-1])
        img = bg
    return np.asarray(img.convert("RGB"))


# demuxers of single still images: PyAV opens a JPEG or PNG as a one-frame "video"
STILL_IMAGE_FORMATS = ("image2", "jpeg_pipe", "png_pipe", "webp_pipe", "bmp_pipe", "tiff_pipe", "gif_pipe")


def _rgb(frame) -> np.ndarray:
    return frame.to_ndarray(format="rgb24")


def decode_video(data: bytes | str | os.PathLike, max_seconds: float, fps: float = 25.0,
                 max_pixels: int = 4096 * 4096, convert: Callable[..., np.ndarray] = _rgb) -> list[np.ndarray]:
    """Video bytes or path -> RGB frames resampled by timestamp to `fps`, at most `max_seconds` long.

    Frames are decoded one at a time and each is passed through `convert` (an av.VideoFrame -> array; by
    default the whole frame as RGB), so a caller that keeps less than full frames never holds them all."""
    import av

    src = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else str(data)
    frames: list[np.ndarray] = []
    try:
        with av.open(src) as container:
            if container.format.name in STILL_IMAGE_FORMATS:
                raise MediaError(f"this is a still image ({container.format.name.removesuffix('_pipe')}), not a video: "
                                 "send an mp4, mov, mkv or webm")
            if not container.streams.video:
                raise MediaError("the file has no video stream")
            stream = container.streams.video[0]
            if stream.codec_context.width * stream.codec_context.height > max_pixels:
                raise MediaTooLarge("video frame size is over the pixel limit")
            next_t = 0.0
            last = None
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                t = float(frame.pts * stream.time_base)
                if t >= max_seconds + 1.0 / fps:
                    raise MediaTooLarge(f"video is longer than the {max_seconds:g} s limit")
                img = convert(frame)
                while next_t <= t + 0.5 / fps:  # the frame shown at each output time
                    frames.append(img if last is None or next_t > t - 0.5 / fps else last)
                    next_t += 1.0 / fps
                last = img
    except MediaError:
        raise
    except (av.error.FFmpegError, ValueError, OSError) as e:
        raise MediaError(f"video could not be decoded ({type(e).__name__}): send an intact mp4, mov, mkv or webm") from None
    if not frames:
        raise MediaError("the video has no decodable frames")
    return frames


def read_audio(path: str | os.PathLike, sample_rate_hz: int = 16000) -> np.ndarray:
    """Any audio file PyAV reads (wav, m4a, mp3, a video's track) -> mono float32 at `sample_rate_hz`."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise MediaError(f"{path} has no audio stream")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate_hz)
            chunks = []
            for frame in container.decode(container.streams.audio[0]):
                for f in resampler.resample(frame):
                    chunks.append(f.to_ndarray().reshape(-1))
            for f in resampler.resample(None):
                chunks.append(f.to_ndarray().reshape(-1))
    except MediaError:
        raise
    except (av.error.FFmpegError, OSError) as e:
        raise MediaError(f"{path}: audio could not be decoded ({type(e).__name__})") from None
    return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
