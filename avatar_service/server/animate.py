"""One Animate session: audio in, frames out, generated as soon as the audio they need is here.

Frame i shows audio [i/fps, (i+1)/fps) and needs `lookahead` more audio after that (mel window and
neighbour smoothing); at end of audio the rest is padded with silence. The producer awaits frames in
order and yields them, so a slow reader only slows its own session (gRPC flow control), while the
reader task keeps taking audio (bounded by the per-session audio limit).
"""
from __future__ import annotations

import asyncio
import collections
import dataclasses
import math
import time
from typing import AsyncIterator

import numpy as np

from avatar_service.api import pb
from avatar_service.errors import InvalidArgument
from avatar_service.runtime.audio_stream import AudioStream
from avatar_service.runtime.avatar import AvatarState
from avatar_service.runtime.engine import Engine, FrameJob
from avatar_service.server.frames import FrameEncoder, VideoSpec


@dataclasses.dataclass(frozen=True)
class GenSpec:
    seed: int
    steps: int
    guidance: float

    @classmethod
    def from_options(cls, g, default_steps: int, default_guidance: float) -> "GenSpec":
        steps = g.sampler_steps or default_steps
        if not 1 <= steps <= 50:
            raise InvalidArgument(f"generation.sampler_steps must be 1 to 50, got {g.sampler_steps}")
        guidance = g.guidance_scale or default_guidance
        if not (math.isfinite(guidance) and 0 < guidance <= 10):
            raise InvalidArgument(f"generation.guidance_scale must be 0 to 10, got {g.guidance_scale}")
        seed = g.seed if g.HasField("seed") else int.from_bytes(np.random.bytes(8), "little")
        return cls(int(seed), int(steps), float(guidance))


@dataclasses.dataclass
class SessionCounters:
    frames_sent: int = 0
    bytes_sent: int = 0
    first_audio_t: float | None = None
    first_frame_latency_ms: float = 0.0
    model_ms: float = 0.0


class FrameProducer:
    """Turns an AudioStream into VideoFrames through the engine. Shared by Animate and Speak."""

    def __init__(self, engine: Engine, avatar: AvatarState, audio: AudioStream, video: VideoSpec, gen: GenSpec,
                 max_inflight: int = 16, first_batch: int | None = 2):
        self.engine, self.avatar, self.audio, self.video, self.gen = engine, avatar, audio, video, gen
        cfg = engine.backend.config
        self.features, self.window = cfg.feature_extractor(engine.backend.device), cfg.window
        self.feature_cache: dict = {}  # finished feature blocks of this stream (Whisper encodes each once)
        # 10 ms margin: the streaming resampler holds back a few samples
        self.lookahead_s = self.window.lookahead_s(video.fps, self.features) + 0.01
        self.noise = np.random.default_rng(gen.seed).standard_normal(cfg.latent_shape).astype(np.float32)
        self.encoder = FrameEncoder(video)
        self.changed = asyncio.Event()
        self.error: BaseException | None = None
        self.counters = SessionCounters()
        self.max_inflight = max_inflight
        # When much audio arrives at once (a sentence from TTS, a buffered clip), a small first submission
        # gets frame 0 out after a batch of `first_batch` frames rather than a full one.
        self.first_batch = first_batch or max_inflight
        self._loop = asyncio.get_running_loop()

    def base_frame(self) -> pb.VideoFrame:
        (x, y, w, h), data = self.encoder.base(self.avatar.textures[0])
        return pb.VideoFrame(index=-1, pts_ms=0, duration_ms=0, rect=pb.Rect(x=x, y=y, width=w, height=h), pixels=data)

    def notify(self) -> None:
        if self.counters.first_audio_t is None and self.audio.input_samples:
            self.counters.first_audio_t = time.perf_counter()
        self.changed.set()

    def fail(self, error: BaseException) -> None:
        self.error = error
        self.changed.set()

    def total_frames(self) -> int | None:
        return math.ceil(self.audio.duration_s * self.video.fps - 1e-9) if self.audio.ended else None

    def ready_frames(self) -> int:
        total = self.total_frames()
        if total is not None:
            return total
        # samples actually in the buffer, not the input clock: the resampler may still hold a few back
        return self.window.frames_ready(len(self.audio.samples), self.video.fps, self.features)

    def _windows(self, start: int, stop: int) -> np.ndarray:
        return self.window.windows(self.audio.samples, start, stop, self.video.fps, self.features, self.feature_cache)

    def _submit(self, start: int, stop: int, windows: np.ndarray) -> list[asyncio.Future]:
        jobs = []
        for k, i in enumerate(range(start, stop)):
            fut = self._loop.create_future()
            jobs.append(FrameJob(avatar=self.avatar, pose=self.avatar.pose_index(i), windows=windows[k],
                                 noise=self.noise, steps=self.gen.steps, guidance=self.gen.guidance,
                                 postprocess=self.encoder.encode, future=fut, loop=self._loop))
        self.engine.submit(jobs)
        return [j.future for j in jobs]

    async def frames(self) -> AsyncIterator[pb.VideoFrame]:
        pending: collections.deque[asyncio.Future] = collections.deque()
        next_submit = next_send = 0
        fps = self.video.fps
        try:
            while True:
                if self.error:
                    raise self.error
                ready = self.ready_frames()
                room = (self.max_inflight if next_submit else self.first_batch) - len(pending)
                if next_submit < ready and room > 0:
                    stop = min(ready, next_submit + room)
                    # feature extraction can be a Whisper encoder call: keep it off the event loop
                    windows = await asyncio.to_thread(self._windows, next_submit, stop)
                    pending.extend(self._submit(next_submit, stop, windows))
                    next_submit = stop
                if pending:
                    (x, y, w, h), data = (res := await pending.popleft())[0]
                    self.counters.model_ms += res[1]
                    frame = pb.VideoFrame(index=next_send, pts_ms=round(next_send * 1000 / fps),
                                          duration_ms=round((next_send + 1) * 1000 / fps) - round(next_send * 1000 / fps),
                                          rect=pb.Rect(x=x, y=y, width=w, height=h), pixels=data)
                    if next_send == 0 and self.counters.first_audio_t is not None:
                        self.counters.first_frame_latency_ms = (time.perf_counter() - self.counters.first_audio_t) * 1000
                    next_send += 1
                    self.counters.frames_sent += 1
                    self.counters.bytes_sent += len(data)
                    yield frame
                    continue
                total = self.total_frames()
                if total is not None and next_send >= total:
                    return
                self.changed.clear()
                if self.ready_frames() <= next_submit and not self.error:
                    await self.changed.wait()
        finally:
            for f in pending:  # cancelled: the engine drops these before computing them
                f.cancel()

    def stats(self) -> pb.SessionStats:
        c = self.counters
        return pb.SessionStats(frames_sent=c.frames_sent, audio_received_ms=round(self.audio.duration_s * 1000),
                               first_frame_latency_ms=c.first_frame_latency_ms,
                               mean_generate_ms=c.model_ms / max(1, c.frames_sent), bytes_sent=c.bytes_sent)

    def started(self, session_id: str) -> pb.SessionStarted:
        v = self.video
        return pb.SessionStarted(session_id=session_id, fps=v.fps, width_px=v.width, height_px=v.height,
                                 pixel_format=v.pixel_format, frame_mode=v.frame_mode, base_frame=self.base_frame(),
                                 lookahead_ms=round(self.lookahead_s * 1000), sampler_steps=self.gen.steps,
                                 guidance_scale=self.gen.guidance)


async def read_audio_requests(requests, producer: FrameProducer) -> None:
    """Reader task of an Animate stream: audio chunks and end-of-audio after the config."""
    try:
        async for req in requests:
            kind = req.WhichOneof("message")
            if kind == "audio":
                producer.audio.push(req.audio.data)
            elif kind == "end_of_audio":
                producer.audio.end()
            elif kind == "config":
                raise InvalidArgument("config sent twice: a session takes one config, first")
            else:
                raise InvalidArgument("empty AnimateRequest: set config, audio or end_of_audio")
            producer.notify()
        producer.audio.end()  # half-close ends the audio
        producer.notify()
    except asyncio.CancelledError:
        raise
    except Exception as e:  # handed to the producer, which raises it in the RPC's own task
        producer.fail(e)
