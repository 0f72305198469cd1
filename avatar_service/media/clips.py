"""Decode a talking-face video into frames on a fixed 25 fps grid and 16 kHz mono audio, with PyAV.

Both streams are placed on one timeline by their timestamps: time 0 is the first video frame, and
output frame k shows the source frame on screen at k / fps (the latest one whose pts <= that time),
so 29.97 and 30 fps sources are resampled by picking frames, never by blending them.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from fractions import Fraction

import av
import numpy as np
import soxr

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm", ".mpg", ".mpeg", ".avi")
SAMPLE_RATE_HZ = 16000


class DecodeError(ValueError):
    """The file cannot be used as a talking clip (unreadable, no video, no audio). The message says why."""


@dataclasses.dataclass(frozen=True)
class ClipInfo:
    path: str
    audio_path: str  # the video itself, or the same-named .wav beside it
    width: int
    height: int
    source_fps: float
    start_s: float  # pts of the first video frame: time 0 of the clip's timeline


def sidecar_wav(path: str) -> str | None:
    wav = os.path.splitext(path)[0] + ".wav"
    return wav if os.path.isfile(wav) else None


def probe(path: str) -> ClipInfo:
    """Stream facts, and where the audio comes from. Raises DecodeError when the file is unusable."""
    try:
        with av.open(path) as c:
            if not c.streams.video:
                raise DecodeError(f"{path}: no video stream")
            v = c.streams.video[0]
            has_audio = bool(c.streams.audio)
            fps = float(v.average_rate or v.guessed_rate or 0) or 25.0
            start = first_video_time(c)
            info = ClipInfo(path, path, v.codec_context.width, v.codec_context.height, fps, start)
    except av.FFmpegError as e:
        raise DecodeError(f"{path}: unreadable video ({e})") from e
    if not has_audio:
        wav = sidecar_wav(path)
        if wav is None:
            raise DecodeError(f"{path}: no audio track and no {os.path.basename(os.path.splitext(path)[0])}.wav beside it")
        info = dataclasses.replace(info, audio_path=wav)
    return info


def first_video_time(container) -> float:
    for frame in container.decode(video=0):
        if frame.pts is not None:
            return float(frame.time)
    raise DecodeError(f"{container.name}: the video stream has no decodable frames")


def iter_frames(info: ClipInfo, fps: float = 25.0, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """RGB uint8 (H, W, 3) frames on the output grid t_k = k / fps (seconds from the first frame)."""
    step = Fraction(fps).limit_denominator(1001)
    k = 0
    prev = None  # (time, av.VideoFrame) of the frame on screen before the current one
    try:
        with av.open(info.path) as c:
            stream = c.streams.video[0]
            stream.thread_type = "AUTO"
            dur = 1.0 / info.source_fps
            for frame in c.decode(stream):
                if frame.pts is None:
                    continue
                t = float(frame.time) - info.start_s
                if prev is not None:
                    while k / step < t - 1e-6:
                        if max_frames is not None and k >= max_frames:
                            return
                        yield prev[1].to_ndarray(format="rgb24")
                        k += 1
                prev = (t, frame)
            if prev is not None:  # the last frame stays on screen for one source frame duration
                while k / step < prev[0] + dur - 1e-6 and (max_frames is None or k < max_frames):
                    yield prev[1].to_ndarray(format="rgb24")
                    k += 1
    except av.FFmpegError as e:
        raise DecodeError(f"{info.path}: video decoding failed at output frame {k} ({e})") from e


def load_audio(info: ClipInfo, max_seconds: float | None = None) -> np.ndarray:
    """float32 mono at 16 kHz, sample 0 at the clip's time 0 (padded with silence if audio starts late)."""
    chunks, rate, first_t = [], None, None
    resampler = av.AudioResampler(format="fltp")  # planar float, native rate and layout
    try:
        with av.open(info.audio_path) as c:
            if not c.streams.audio:
                raise DecodeError(f"{info.audio_path}: no audio stream")
            for frame in c.decode(audio=0):
                if first_t is None and frame.pts is not None:
                    first_t = float(frame.time)
                for f in resampler.resample(frame):
                    rate = f.sample_rate
                    chunks.append(f.to_ndarray().mean(axis=0))  # (channels, n) -> mono
                if max_seconds is not None and rate and sum(map(len, chunks)) > (max_seconds + 1) * rate:
                    break
    except av.FFmpegError as e:
        raise DecodeError(f"{info.audio_path}: audio decoding failed ({e})") from e
    if not chunks or rate is None:
        raise DecodeError(f"{info.audio_path}: the audio stream is empty")
    audio = np.concatenate(chunks).astype(np.float32)
    if rate != SAMPLE_RATE_HZ:
        audio = soxr.resample(audio, rate, SAMPLE_RATE_HZ, quality="HQ").astype(np.float32)
    # A sidecar wav starts with the video's first frame; an embedded track is placed by its pts.
    ref = info.start_s if info.audio_path == info.path else 0.0
    offset = int(round(((first_t or 0.0) - ref) * SAMPLE_RATE_HZ))
    if offset > 0:
        audio = np.concatenate([np.zeros(offset, np.float32), audio])
    elif offset < 0:
        audio = audio[-offset:]
    return audio


def find_videos(sources: list[str]) -> list[str]:
    """Video files named directly, or found (sorted, not recursive) in the named folders."""
    out = []
    for src in sources:
        if os.path.isdir(src):
            out += sorted(os.path.join(src, n) for n in os.listdir(src) if n.lower().endswith(VIDEO_EXTENSIONS))
        elif os.path.isfile(src):
            out.append(src)
        else:
            raise FileNotFoundError(f"{src}: no such file or folder")
    return out
