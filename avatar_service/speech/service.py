"""SpeechService: what the server's Speak and GetServerInfo call. Validates at the boundary, takes a
session slot as Animate does, and runs one SpeakSession per line."""
from __future__ import annotations

import concurrent.futures
import logging
import threading
import uuid
from typing import AsyncIterator

from avatar_service.api import pb
from avatar_service.errors import InvalidArgument, NotFound
from avatar_service.runtime.audio_stream import MAX_RATE_HZ, MIN_RATE_HZ, AudioStream
from avatar_service.server.animate import FrameProducer, GenSpec
from avatar_service.server.frames import VideoSpec
from avatar_service.speech.backends import BackendUnavailable, Synthesizer, load_voice
from avatar_service.speech.config import SpeechConfig
from avatar_service.speech.session import SpeakSession, SpeechCounters
from avatar_service.speech.text import prepare_text

log = logging.getLogger(__name__)
PCM_F32LE = 2  # AudioEncoding: how synthesized samples enter the session's AudioStream


class SpeechService:
    def __init__(self, app, config: SpeechConfig, voices: dict[str, Synthesizer]):
        self.app, self.config, self._voices = app, config, voices
        self.default_voice = config.default_voice or next(iter(voices))
        if self.default_voice not in voices:
            raise ValueError(f"default_voice {config.default_voice!r} is not among the loaded voices {list(voices)}")
        self.executor = concurrent.futures.ThreadPoolExecutor(config.synth_threads, thread_name_prefix="avatarlab-tts")
        self.counters = SpeechCounters()

    @classmethod
    def create(cls, app, config: SpeechConfig | None = None) -> "SpeechService":
        """Load every configured voice whose backend is installed, and warm each up.
        ImportError when none is (the server then answers Speak with FAILED_PRECONDITION)."""
        config = config or getattr(app.settings, "speech", None) or SpeechConfig()
        voices: dict[str, Synthesizer] = {}
        for vc in config.voices:
            try:
                voice = load_voice(vc)
                for _ in voice.sentences("Hello.", threading.Event()):  # first ONNX run pays lazy init
                    pass
                voices[vc.voice_id] = voice
            except BackendUnavailable as e:
                log.warning("voice %s skipped: %s", vc.voice_id, e)
        if not voices:
            raise ImportError("no text-to-speech backend is installed (pip install avatarlab[speech], "
                              "or apt-get install espeak-ng for the fallback voice)")
        log.info("voices: %s (default %s)", ", ".join(voices), config.default_voice or next(iter(voices)))
        return cls(app, config, voices)

    def voices(self) -> list[pb.Voice]:
        return [pb.Voice(voice_id=v.config.voice_id, language=v.config.language, backend=v.backend_name,
                         sample_rate_hz=v.sample_rate_hz, license=v.license) for v in self._voices.values()]

    def voice(self, voice_id: str) -> Synthesizer:
        voice = self._voices.get(voice_id or self.default_voice)
        if voice is None:
            raise NotFound(f"voice {voice_id!r} does not exist; ServerInfo.voices lists "
                           f"{', '.join(self._voices)}")
        return voice

    async def speak(self, request: pb.SpeakRequest, context) -> AsyncIterator[pb.SpeakResponse]:
        app = self.app
        limits, model = app.settings.limits, app.engine.backend.config
        text = prepare_text(request.text, limits.max_text_chars)
        voice = self.voice(request.voice_id)
        out_rate = request.audio_sample_rate_hz or voice.sample_rate_hz
        if not MIN_RATE_HZ <= out_rate <= MAX_RATE_HZ:
            raise InvalidArgument(f"audio_sample_rate_hz must be 0 (the voice's {voice.sample_rate_hz} Hz) or "
                                  f"{MIN_RATE_HZ} to {MAX_RATE_HZ}, got {request.audio_sample_rate_hz}")
        video = VideoSpec.from_options(request.video, app.settings.face_px)
        gen = GenSpec.from_options(request.generation, model.sampling.default_steps, model.sampling.default_guidance)
        avatar = await app.avatars.state(request.avatar_id)
        async with app.slots.acquire(context):
            audio = AudioStream(PCM_F32LE, voice.sample_rate_hz, 1, model.mel.sample_rate_hz,
                                limits.max_audio_seconds_per_session)
            producer = FrameProducer(app.engine, avatar, audio, video, gen, first_batch=self.config.first_batch)
            session = SpeakSession(producer, voice, text, out_rate, self.executor, self.config, self.counters)
            async for msg in session.messages(uuid.uuid4().hex[:16]):
                yield msg

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
