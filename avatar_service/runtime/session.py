"""One animation session, the domain's home of the audio -> frames path, shared by Animate and Speak.

It owns the session's audio stream, cuts feature windows as audio arrives, hands them to its renderer
(runtime/renderer.py: the warp renderer's speech read-out, or the diffusion engine's shared batches),
and renders and encodes each frame in a worker thread of its own turn, off both the model thread and
the event loop. It yields plain dataclasses;
the gRPC layer (server/translate.py) turns them into messages.

Every frame carries its mouth (runtime/mouth.py: visemes and blendshapes for 3D rigs) from the
session's mouth source, on the same audio clock. A motion-only session has no renderer: no image is
warped, generated or encoded, and its frames carry the mouth alone.

Frame i shows audio [i/fps, (i+1)/fps) and needs `lookahead` more audio after that (feature window
and neighbour smoothing); at end of audio the rest is padded with silence. Frames come out in order,
so a slow reader only slows its own session (gRPC flow control), while the reader keeps pushing audio
(bounded by the per-session audio limit). Each frame's deadline for the engine is the session's start
plus its pts, so a bulk sender cannot starve a paced session (avatar_service/batching.py).
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import math
import time
from typing import AsyncIterator

import numpy as np

from avatar_service.runtime.audio_stream import AudioStream
from avatar_service.runtime.avatar import AvatarState
from avatar_service.runtime.frame_encoder import FrameEncoder, Rect, VideoSpec
from avatar_service.runtime.mouth import MouthBlock


@dataclasses.dataclass(frozen=True)
class GenSpec:
    """How a session's frames are drawn: the start noise's seed, sampler steps, audio guidance."""
    seed: int
    steps: int
    guidance: float


@dataclasses.dataclass(frozen=True)
class Frame:
    """One encoded frame, as the client places it on its surface."""
    index: int  # -1 for the base frame
    pts_ms: int
    duration_ms: int
    rect: Rect  # where `pixels` go on the client's surface; (0, 0, 0, 0) = nothing changed
    pixels: bytes
    mouth: MouthBlock | None = None  # None only for the base frame


@dataclasses.dataclass(frozen=True)
class SessionInfo:
    video: VideoSpec
    base_frame: Frame
    lookahead_ms: int
    steps: int
    guidance: float
    motion_only: bool = False


@dataclasses.dataclass(frozen=True)
class SessionStats:
    frames_sent: int
    audio_received_ms: int
    first_frame_latency_ms: float
    mean_generate_ms: float
    bytes_sent: int


@dataclasses.dataclass
class SessionCounters:
    frames_sent: int = 0
    messages_sent: int = 0  # transport messages that carried them (fewer where frames go in batches)
    bytes_sent: int = 0
    first_audio_t: float | None = None
    first_frame_latency_ms: float = 0.0
    model_ms: float = 0.0


class Session:
    def __init__(self, renderer, avatar: AvatarState, audio: AudioStream, video: VideoSpec, gen: GenSpec,
                 mouth, max_inflight: int = 16, first_batch: int | None = 2, motion_only: bool = False):
        """renderer: runtime/renderer.py's WarpRenderer or DiffusionRenderer (unused when motion_only);
        mouth: a runtime/mouth.py mouth source."""
        self.renderer = None if motion_only else renderer
        self.avatar, self.audio, self.video, self.gen, self.mouth = avatar, audio, video, gen, mouth
        self.motion_only = motion_only
        # a frame is ready when both its pixels' and its mouth's audio are in
        self.inputs = [(mouth.window, mouth.features)] + ([] if motion_only else [(renderer.window, renderer.features)])
        self.feature_cache: dict = {}  # finished feature blocks of this stream (Whisper encodes each once)
        # the mouth shares them when it reads the same features (a block's key is its index)
        self.mouth_cache = self.feature_cache if motion_only or mouth.features is renderer.features else {}
        self.mouths: dict[int, MouthBlock] = {}  # computed with their frames' windows, sent with the frames
        # 10 ms margin: the streaming resampler holds back a few samples
        self.lookahead_s = max(w.lookahead_s(video.fps, f) for w, f in self.inputs) + 0.01
        self.noise = (np.random.default_rng(gen.seed).standard_normal(renderer.latent_shape).astype(np.float32)
                      if not motion_only and hasattr(renderer, "latent_shape") else None)
        self.encoder = None if motion_only else FrameEncoder(video)
        self.changed = asyncio.Event()
        self.error: BaseException | None = None
        self.counters = SessionCounters()
        self.max_inflight = max_inflight
        # When much audio arrives at once (a sentence from TTS, a buffered clip), a small first submission
        # gets frame 0 out after a batch of `first_batch` frames rather than a full one.
        self.first_batch = first_batch or max_inflight
        # Frame i is due at start + i / fps (the engine's deadline), `start` being when the first audio
        # came: a session opened long before it speaks must not jump the queue.
        self.start: float | None = None
        self._loop = asyncio.get_running_loop()
        (x, y, w, h), data = self.encoder.base(avatar.textures[0]) if self.encoder else ((0, 0, 0, 0), b"")
        self.info = SessionInfo(video=video, base_frame=Frame(-1, 0, 0, (x, y, w, h), data),
                                lookahead_ms=round(self.lookahead_s * 1000), steps=gen.steps, guidance=gen.guidance,
                                motion_only=motion_only)

    # -- input ------------------------------------------------------------------------------------
    def push(self, data: bytes) -> None:
        """PCM bytes in the format the session was opened with."""
        self.audio.push(data)
        self._notify()

    def push_samples(self, samples: np.ndarray) -> None:
        """Mono float samples at the session's input rate."""
        self.audio.push_samples(samples)
        self._notify()

    def end(self) -> None:
        self.audio.end()
        self._notify()

    def fail(self, error: BaseException) -> None:
        """End the session with `error`, raised from frames() in the consumer's own task."""
        self.error = error
        self.changed.set()

    def _notify(self) -> None:
        if self.counters.first_audio_t is None and self.audio.input_samples:
            self.counters.first_audio_t = time.perf_counter()
            self.start = time.monotonic()
        self.changed.set()

    # -- output -----------------------------------------------------------------------------------
    def total_frames(self) -> int | None:
        return math.ceil(self.audio.duration_s * self.video.fps - 1e-9) if self.audio.ended else None

    def ready_frames(self) -> int:
        total = self.total_frames()
        if total is not None:
            return total
        # samples actually in the buffer, not the input clock: the resampler may still hold a few back
        n = len(self.audio.samples)
        return min(w.frames_ready(n, self.video.fps, f) for w, f in self.inputs)

    def _pts_ms(self, i: int) -> int:
        return round(i * 1000 / self.video.fps)

    def _due(self, i: int) -> float:
        return (self.start if self.start is not None else time.monotonic()) + i / self.video.fps

    def _mouths(self, start: int, stop: int) -> list[MouthBlock]:
        return self.mouth.blocks(self.audio.samples, start, stop, self.video.fps, self.mouth_cache, self._due(start))

    def _windows(self, start: int, stop: int) -> np.ndarray:
        """The renderer's windows of frames [start, stop), their mouths kept for `_finish`."""
        self.mouths.update(zip(range(start, stop), self._mouths(start, stop)))
        return self.renderer.windows(self.audio.samples, start, stop, self.video.fps, self.feature_cache,
                                   deadline=self._due(start))

    def _submit(self, start: int, stop: int, windows: np.ndarray) -> list[tuple[int, asyncio.Future]]:
        return self.renderer.submit(self.avatar, range(start, stop), windows, self.noise, self.gen,
                                    lambda i: self.start + i / self.video.fps, self._loop)

    def _finish(self, first: int, done: list[tuple[int, np.ndarray]]) -> list[Frame]:
        """Composite and encode decoded regions in order (a worker thread: this is per-session CPU work)."""
        out = []
        for k, (pose, region) in enumerate(done):
            texture, changed = self.renderer.finish(self.avatar, pose, region)
            rect, data = self.encoder.encode(texture, pose, changed)
            i = first + k
            out.append(self._frame(i, rect, data, self.mouths.pop(i)))
        return out

    def _frame(self, i: int, rect: Rect, pixels: bytes, mouth: MouthBlock) -> Frame:
        return Frame(i, self._pts_ms(i), self._pts_ms(i + 1) - self._pts_ms(i), rect, pixels, mouth)

    def _sent(self, frame: Frame) -> None:
        if frame.index == 0 and self.counters.first_audio_t is not None:
            self.counters.first_frame_latency_ms = (time.perf_counter() - self.counters.first_audio_t) * 1000
        self.counters.frames_sent += 1
        self.counters.bytes_sent += len(frame.pixels)

    def _all_done(self, finished: int) -> bool:
        total = self.total_frames()
        return total is not None and finished >= total

    async def _more_audio(self, taken: int) -> None:
        """Wait until audio makes a frame past `taken` ready (or the session fails or ends)."""
        self.changed.clear()
        if self.ready_frames() <= taken and not self.error:
            await self.changed.wait()

    def frame_runs(self) -> AsyncIterator[list[Frame]]:
        """The frames in order, as runs: each run is every frame that became ready at the same moment
        (a motion-only session's run is one mouth call's frames; an image session's, one composite
        call's). A transport may send a run in one message; nothing waits to make a run longer."""
        return self._motion_runs() if self.motion_only else self._image_runs()

    async def frames(self) -> AsyncIterator[Frame]:
        """The frames in order, one at a time."""
        async with contextlib.aclosing(self.frame_runs()) as runs:  # closed at once: cancels engine work
            async for run in runs:
                for frame in run:
                    yield frame

    def _sent_run(self, run: list[Frame]) -> list[Frame]:
        for frame in run:
            self._sent(frame)
        return run

    async def _motion_runs(self) -> AsyncIterator[list[Frame]]:
        """Motion only: each run of ready frames is one mouth call (features, read-out, rig), nothing else."""
        sent = 0
        while True:
            if self.error:
                raise self.error
            ready = self.ready_frames()
            if sent < ready:
                t = time.perf_counter()
                mouths = await self._motion_blocks(sent, ready)
                self.counters.model_ms += (time.perf_counter() - t) * 1000
                yield self._sent_run([self._frame(i, (0, 0, 0, 0), b"", m) for i, m in enumerate(mouths, sent)])
                sent = ready
                continue
            if self._all_done(sent):
                return
            await self._more_audio(sent)

    async def _motion_blocks(self, start: int, stop: int) -> list[MouthBlock]:
        submit = getattr(self.mouth, "submit", None)
        if submit is None:  # computed in a worker thread (a Whisper encoder call, or a text mouth's weights)
            return await asyncio.to_thread(self._mouths, start, stop)
        # a batched mouth (runtime/mouth.py MelMouth): no thread waits for it
        return await asyncio.wrap_future(submit(self.audio.samples, start, stop, self.video.fps, self.mouth_cache,
                                                self._due(start)))

    async def _image_runs(self) -> AsyncIterator[list[Frame]]:
        pending: collections.deque[tuple[int, asyncio.Future]] = collections.deque()  # at the engine
        decoded: list[tuple[int, np.ndarray]] = []  # back from the engine: (pose, region), in order
        finished: collections.deque[Frame] = collections.deque()  # encoded, not yet sent
        next_submit = next_finish = 0
        try:
            while True:
                if self.error:
                    raise self.error
                # keep the engine busy first: submit what the audio allows before compositing or sending
                ready = self.ready_frames()
                # up to `max_inflight` frames at the engine, and as many again back from it but not yet
                # sent (so the engine works while this session composites, and a slow reader's session
                # holds at most twice that)
                limit = self.max_inflight if next_submit else self.first_batch
                room = min(limit - len(pending), 2 * limit - len(pending) - len(decoded) - len(finished))
                # ...except that the first batch goes all the way out before more is prepared: the next
                # batch's features (for the warp renderer a Whisper encoder call per 40 ms block, ~90 ms for
                # 16 frames) would otherwise hold frame 0 back when much audio came at once
                first_out = next_submit == 0 or self.counters.frames_sent > 0
                if next_submit < ready and room > 0 and first_out:
                    stop = min(ready, next_submit + room)
                    # feature extraction can be a Whisper encoder call: keep it off the event loop
                    windows = await asyncio.to_thread(self._windows, next_submit, stop)
                    pending.extend(self._submit(next_submit, stop, windows))
                    next_submit = stop
                if finished:  # everything encoded goes out now, as one run
                    run = self._sent_run(list(finished))
                    finished.clear()
                    yield run
                    continue
                if decoded:  # regions already back go in one worker call, a few at a time so sending starts soon
                    part, decoded = decoded[:4], decoded[4:]
                    finished.extend(await asyncio.to_thread(self._finish, next_finish, part))
                    next_finish += len(part)
                    continue
                if pending:
                    await asyncio.wait([pending[0][1]])
                    while pending and pending[0][1].done():
                        pose, fut = pending.popleft()
                        region, model_ms = fut.result()  # raises a failed frame's error
                        self.counters.model_ms += model_ms
                        decoded.append((pose, region))
                    continue
                if self._all_done(next_finish):
                    return
                await self._more_audio(next_submit)
        finally:
            for _, f in pending:  # cancelled: the engine drops these before computing them
                f.cancel()

    def stats(self) -> SessionStats:
        c = self.counters
        return SessionStats(frames_sent=c.frames_sent, audio_received_ms=round(self.audio.duration_s * 1000),
                            first_frame_latency_ms=c.first_frame_latency_ms,
                            mean_generate_ms=c.model_ms / max(1, c.frames_sent), bytes_sent=c.bytes_sent)
