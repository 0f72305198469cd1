"""One Speak line: sentences synthesized in a worker thread feed an animation Session (the one Animate
uses), and the audio and frames go out merged on one presentation-time clock.

Three tasks run together:
  synthesize  worker thread -> each sentence's float samples into the session (resampled to the
              model's 16 kHz there) and, as s16le chunks at the output rate, into `audio_out`;
  pump        Session.frames() -> a small bounded queue (a slow reader slows generation);
  events      the RPC's own generator: yields every audio chunk that starts at or before the next
              frame's start, then that frame (or the run of queued frames the audio sent covers, up
              to max_frames), so a frame never arrives before the audio it shows.
The first sentence's audio and frames go out while later sentences are still being synthesized.
Cancelling the RPC cancels the tasks: no further sentence is synthesized, queued frames are dropped.
"""
from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import dataclasses
import threading
import time
from typing import AsyncIterator

import numpy as np
import soxr

from avatar_service.runtime.session import Frame, Session, SessionInfo, SessionStats
from avatar_service.speech.backends import Synthesizer
from avatar_service.speech.config import SpeechConfig


@dataclasses.dataclass
class SpeechCounters:
    """Service-wide, read by tests and metrics."""
    lines_active: int = 0  # event loop only
    sentences_synthesized: int = 0  # worker threads, under `lock`
    synth_seconds: float = 0.0
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

    def add_sentence(self, seconds: float) -> None:
        with self.lock:
            self.sentences_synthesized += 1
            self.synth_seconds += seconds


@dataclasses.dataclass(frozen=True)
class AudioOut:
    start: int  # first sample's index on the output clock
    pcm: bytes  # s16le mono


@dataclasses.dataclass(frozen=True)
class SpeechStarted:
    """The line's first event: the animation session's info, and the audio the client will get."""
    video: SessionInfo
    audio_sample_rate_hz: int
    voice_id: str


@dataclasses.dataclass(frozen=True)
class SpeechAudio:
    """A chunk of the line's audio, s16le mono at the output rate, stamped on the frames' clock."""
    pcm_s16le: bytes
    pts_ms: int


# A list is a run of frames whose audio has gone out, in order: one frame, or up to the line's
# max_frames when it asked for batches. SessionStats ends the line.
SpeechEvent = SpeechStarted | SpeechAudio | list[Frame] | SessionStats


class SpeakSession:
    def __init__(self, session: Session, voice: Synthesizer, text: str, out_rate_hz: int,
                 executor: concurrent.futures.Executor, config: SpeechConfig, counters: SpeechCounters,
                 max_frames: int = 1):
        self.session, self.voice, self.text = session, voice, text
        self.max_frames = max_frames  # frames one event may carry (the frames queued, their audio sent)
        self.in_rate, self.out_rate = voice.sample_rate_hz, out_rate_hz
        self.executor, self.config, self.counters = executor, config, counters
        self.resampler = None if out_rate_hz == voice.sample_rate_hz else soxr.ResampleStream(
            voice.sample_rate_hz, out_rate_hz, 1, dtype="float32", quality="HQ")
        self.chunk = max(1, out_rate_hz * config.audio_chunk_ms // 1000)  # output samples a message
        self.audio_out: collections.deque[AudioOut] = collections.deque()
        self.frames_out: asyncio.Queue[Frame] = asyncio.Queue(maxsize=config.frame_queue)
        self.in_samples = self.out_samples = 0  # synthesized so far, at the voice's and the output rate
        self.audio_done = self.frames_done = False
        self.cancel = threading.Event()  # seen by the worker thread between (espeak-ng: within) sentences
        self.changed = asyncio.Event()
        self.error: BaseException | None = None

    # -- producers -------------------------------------------------------------------------------
    async def _synthesize(self) -> None:
        loop = asyncio.get_running_loop()
        pause = np.zeros(round(self.voice.config.sentence_pause_s * self.in_rate), np.float32)
        sentences = self.voice.spoken(self.text, self.cancel)

        def next_sentence():  # in a worker thread
            t = time.perf_counter()
            spoken = next(sentences, None)
            if spoken is not None:
                self.counters.add_sentence(time.perf_counter() - t)
            return spoken

        self.counters.lines_active += 1
        try:
            first = True
            while (spoken := await loop.run_in_executor(self.executor, next_sentence)) is not None:
                lead = 0 if first else len(pause)
                add_phonemes = getattr(self.session.mouth, "add", None)  # speech/text_mouth.py: exact visemes
                if add_phonemes is not None:
                    add_phonemes(spoken.phonemes, (self.in_samples + lead) / self.in_rate)
                self._push(spoken.audio if first else np.concatenate([pause, spoken.audio]))
                first = False
            self._finish()
        except Exception as e:  # noqa: BLE001 - raised again in the RPC's own task
            self.error = e
            self.session.fail(e)
            self.changed.set()
        finally:
            self.counters.lines_active -= 1

    def _push(self, audio: np.ndarray) -> None:
        """One sentence at the voice's rate -> the frame generator's input and the output queue."""
        self.session.push_samples(audio)
        self.in_samples += len(audio)
        self._queue_out(audio if self.resampler is None else self.resampler.resample_chunk(audio))

    def _finish(self) -> None:
        self.session.end()
        tail = np.zeros(0, np.float32)
        if self.resampler is not None:
            tail = self.resampler.resample_chunk(np.zeros(0, np.float32), last=True)
        # Output length exactly the input's duration at the output rate, so both clocks end together.
        target = round(self.in_samples * self.out_rate / self.in_rate) - self.out_samples
        tail = tail[:max(0, target)] if len(tail) >= target else np.concatenate([tail, np.zeros(target - len(tail), np.float32)])
        self._queue_out(tail)
        self.audio_done = True
        self.changed.set()

    def _queue_out(self, audio: np.ndarray) -> None:
        pcm = np.round(np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")
        for i in range(0, len(pcm), self.chunk):
            piece = pcm[i:i + self.chunk]
            self.audio_out.append(AudioOut(self.out_samples, piece.tobytes()))
            self.out_samples += len(piece)
        self.changed.set()

    async def _pump(self) -> None:
        try:
            async for frame in self.session.frames():
                await self.frames_out.put(frame)
                self.changed.set()
            self.frames_done = True
        except Exception as e:  # noqa: BLE001 - raised again in the RPC's own task
            self.error = e
        self.changed.set()

    # -- the RPC's stream ------------------------------------------------------------------------
    def _audio_event(self, a: AudioOut) -> SpeechAudio:
        return SpeechAudio(pcm_s16le=a.pcm, pts_ms=round(a.start * 1000 / self.out_rate))

    def _audio_due(self, frames_sent: int, fps: int) -> bool:
        """The next audio chunk starts no later than the next frame (exact: start/out_rate <= n/fps)."""
        return bool(self.audio_out) and (self.frames_done or self.audio_out[0].start * fps <= frames_sent * self.out_rate)

    async def events(self) -> AsyncIterator[SpeechEvent]:
        fps = self.session.video.fps
        tasks = [asyncio.create_task(self._synthesize()), asyncio.create_task(self._pump())]
        sent = audio_sent = 0  # frames sent (frame n starts at n / fps s); output samples sent
        try:
            yield SpeechStarted(video=self.session.info, audio_sample_rate_hz=self.out_rate,
                                voice_id=self.voice.config.voice_id)
            while True:
                if self.error:
                    raise self.error
                if self._audio_due(sent, fps):
                    a = self.audio_out.popleft()
                    audio_sent = a.start + len(a.pcm) // 2
                    yield self._audio_event(a)
                    continue
                run: list[Frame] = []  # the frames that may go now, as one at a time would go
                while len(run) < self.max_frames and not self.frames_out.empty():
                    n = sent + len(run)
                    covered = self.audio_done or audio_sent * fps > n * self.out_rate
                    if not covered or (run and self._audio_due(n, fps)):  # audio first
                        break
                    run.append(self.frames_out.get_nowait())
                if run:
                    sent += len(run)
                    yield run
                    continue
                if self.frames_done and self.audio_done and not self.audio_out and self.frames_out.empty():
                    break
                # nothing can go out yet; only the other two tasks change that, and they run while we wait
                self.changed.clear()
                await self.changed.wait()
            yield self.session.stats()
        finally:
            self.cancel.set()
            for t in tasks:
                t.cancel()
