"""Protobuf <-> domain: request options checked and turned into domain specs (errors name the proto
fields the client set), and the session's plain dataclasses turned into messages. The one place that
knows both the generated enums and the domain's."""
from __future__ import annotations

import asyncio
import math

import numpy as np

from avatar_service.api import pb
from avatar_service.errors import InvalidArgument
from avatar_service.face.rig import BLENDSHAPE_NAMES, VISEME_NAMES
from avatar_service.model.config import SamplingConfig
from avatar_service.runtime.audio_stream import MAX_RATE_HZ, MIN_RATE_HZ, AudioStream, SampleFormat
from avatar_service.runtime.frame_encoder import FrameMode, PixelFormat, VideoSpec
from avatar_service.runtime.session import Frame, GenSpec, Session, SessionInfo, SessionStats

PIXEL_FORMATS = {pb.PIXEL_FORMAT_RGBA8: PixelFormat.RGBA8, pb.PIXEL_FORMAT_RGB8: PixelFormat.RGB8,
                 pb.PIXEL_FORMAT_JPEG: PixelFormat.JPEG}
FRAME_MODES = {pb.FRAME_MODE_FULL: FrameMode.FULL, pb.FRAME_MODE_DELTA: FrameMode.DELTA}
SAMPLE_FORMATS = {pb.AUDIO_ENCODING_PCM_S16LE: SampleFormat.S16LE, pb.AUDIO_ENCODING_PCM_F32LE: SampleFormat.F32LE}
_PIXEL_FORMAT_PB = {v: k for k, v in PIXEL_FORMATS.items()}
_FRAME_MODE_PB = {v: k for k, v in FRAME_MODES.items()}


# -- requests -> domain ---------------------------------------------------------------------------
def video_spec(v: pb.VideoOptions, default_px: int) -> VideoSpec:
    """0/UNSPECIFIED take defaults."""
    fps = v.fps or 25
    if not 1 <= fps <= 60:
        raise InvalidArgument(f"video.fps must be 1 to 60, got {v.fps}")
    w, h = v.width_px or default_px, v.height_px or default_px
    if not (16 <= w <= 1024 and 16 <= h <= 1024):
        raise InvalidArgument(f"video size must be 16 to 1024 pixels a side, got {v.width_px}x{v.height_px}")
    fmt = PIXEL_FORMATS.get(v.pixel_format or pb.PIXEL_FORMAT_RGBA8)
    if fmt is None:
        raise InvalidArgument(f"unknown video.pixel_format {v.pixel_format}")
    q = v.jpeg_quality or 85
    if not 1 <= q <= 100:
        raise InvalidArgument(f"video.jpeg_quality must be 1 to 100, got {v.jpeg_quality}")
    mode = FRAME_MODES.get(v.frame_mode or pb.FRAME_MODE_FULL)
    if mode is None:
        raise InvalidArgument(f"unknown video.frame_mode {v.frame_mode}")
    return VideoSpec(fps, w, h, fmt, q, mode)


def gen_spec(g: pb.GenerationOptions, sampling: SamplingConfig) -> GenSpec:
    steps = g.sampler_steps or sampling.default_steps
    if not 1 <= steps <= 50:
        raise InvalidArgument(f"generation.sampler_steps must be 1 to 50, got {g.sampler_steps}")
    guidance = g.guidance_scale or sampling.default_guidance
    if not (math.isfinite(guidance) and 0 < guidance <= 10):
        raise InvalidArgument(f"generation.guidance_scale must be 0 to 10, got {g.guidance_scale}")
    seed = g.seed if g.HasField("seed") else int.from_bytes(np.random.bytes(8), "little")
    return GenSpec(int(seed), int(steps), float(guidance))


MAX_FRAMES_PER_MESSAGE = 64  # the proto's documented bound: a batch of motion frames stays a few KiB


def frames_per_message(value: int, field: str = "max_frames_per_message") -> int:
    """The most frames one response may carry (0 means 1: a `frame` each, as before batching existed)."""
    if not 0 <= value <= MAX_FRAMES_PER_MESSAGE:
        raise InvalidArgument(f"{field} must be 0 to {MAX_FRAMES_PER_MESSAGE} (0 or 1: one frame a message), "
                              f"got {value}")
    return max(1, value)


def check_rate(rate: int, field: str, default_note: str = "") -> int:
    if not MIN_RATE_HZ <= rate <= MAX_RATE_HZ:
        raise InvalidArgument(f"{field} must be {default_note}{MIN_RATE_HZ} to {MAX_RATE_HZ}, got {rate}")
    return rate


def audio_stream(a: pb.AudioFormat, model_rate_hz: int, max_seconds: float) -> AudioStream:
    fmt = SAMPLE_FORMATS.get(a.encoding)
    if fmt is None:
        raise InvalidArgument("audio_format.encoding must be AUDIO_ENCODING_PCM_S16LE or AUDIO_ENCODING_PCM_F32LE")
    check_rate(a.sample_rate_hz, "audio_format.sample_rate_hz")
    channels = a.channels or 1
    if channels not in (1, 2):
        raise InvalidArgument(f"audio_format.channels must be 1 or 2, got {a.channels}")
    return AudioStream(fmt, a.sample_rate_hz, channels, model_rate_hz, max_seconds)


async def read_audio_requests(requests, session: Session) -> None:
    """Reader task of an Animate stream: audio chunks and end-of-audio after the config."""
    try:
        async for req in requests:
            kind = req.WhichOneof("message")
            if kind == "audio":
                session.push(req.audio.data)
            elif kind == "end_of_audio":
                session.end()
            elif kind == "config":
                raise InvalidArgument("config sent twice: a session takes one config, first")
            else:
                raise InvalidArgument("empty AnimateRequest: set config, audio or end_of_audio")
        session.end()  # half-close ends the audio
    except asyncio.CancelledError:
        raise
    except Exception as e:  # handed to the session, which raises it in the RPC's own task
        session.fail(e)


# -- domain -> messages ---------------------------------------------------------------------------
def frame_pb(f: Frame) -> pb.VideoFrame:
    x, y, w, h = f.rect
    mouth = None if f.mouth is None else pb.MouthMotion(visemes=f.mouth.visemes.tolist(),
                                                         blendshapes=f.mouth.blendshapes.tolist())
    return pb.VideoFrame(index=f.index, pts_ms=f.pts_ms, duration_ms=f.duration_ms,
                         rect=pb.Rect(x=x, y=y, width=w, height=h), pixels=f.pixels, mouth=mouth)


def frame_messages(run: list[Frame], most: int, response):
    """A run of ready frames as `response` messages (AnimateResponse or SpeakResponse): up to `most`
    frames in each FrameBatch; a lone frame, and every frame when `most` is 1, in `frame` as always."""
    for k in range(0, len(run), most):
        part = run[k:k + most]
        if len(part) == 1:
            yield response(frame=frame_pb(part[0]))
        else:
            yield response(frames=pb.FrameBatch(frames=[frame_pb(f) for f in part]))


def started_pb(info: SessionInfo, session_id: str) -> pb.SessionStarted:
    v = info.video
    return pb.SessionStarted(session_id=session_id, fps=v.fps, width_px=v.width, height_px=v.height,
                             pixel_format=_PIXEL_FORMAT_PB[v.pixel_format], frame_mode=_FRAME_MODE_PB[v.frame_mode],
                             base_frame=frame_pb(info.base_frame), lookahead_ms=info.lookahead_ms,
                             sampler_steps=info.steps, guidance_scale=info.guidance, viseme_names=VISEME_NAMES,
                             blendshape_names=BLENDSHAPE_NAMES, motion_only=info.motion_only)


def stats_pb(s: SessionStats) -> pb.SessionStats:
    return pb.SessionStats(frames_sent=s.frames_sent, audio_received_ms=s.audio_received_ms,
                           first_frame_latency_ms=s.first_frame_latency_ms, mean_generate_ms=s.mean_generate_ms,
                           bytes_sent=s.bytes_sent)
