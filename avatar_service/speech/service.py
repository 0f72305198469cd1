"""SpeechService: the loaded voices, and one SpeakSession per line. The gRPC layer (server/servicer.py)
validates the request, opens the animation session as Animate does, and translates what the line
yields into messages; nothing here knows about gRPC."""
from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import threading
from typing import AsyncIterator

from avatar_service.errors import NotFound
from avatar_service.runtime.session import Session
from avatar_service.speech.backends import BackendUnavailable, Synthesizer
from avatar_service.speech.config import SpeechConfig, VoiceConfig
from avatar_service.speech.session import SpeakSession, SpeechCounters, SpeechEvent
from avatar_service.speech.text import prepare_text

log = logging.getLogger(__name__)


def load_voice(cfg: VoiceConfig) -> Synthesizer:
    """Build the voice; BackendUnavailable when its backend is not installed."""
    if cfg.backend == "piper":
        from avatar_service.speech.piper_backend import PiperSynthesizer
        return PiperSynthesizer(cfg)
    if cfg.backend == "espeak-ng":
        from avatar_service.speech.espeak import EspeakSynthesizer
        return EspeakSynthesizer(cfg)
    raise ValueError(f"unknown TTS backend {cfg.backend!r} (known: piper, espeak-ng)")


@dataclasses.dataclass(frozen=True)
class SpeakLine:
    text: str  # validated (speech.text)
    voice: Synthesizer
    out_rate_hz: int  # the audio the client gets
    max_frames: int = 1  # frames one event may carry (SpeakRequest.max_frames_per_message)


class SpeechService:
    def __init__(self, config: SpeechConfig, voices: dict[str, Synthesizer]):
        self.config, self._voices = config, voices
        self.default_voice = config.default_voice or next(iter(voices))
        if self.default_voice not in voices:
            raise ValueError(f"default_voice {config.default_voice!r} is not among the loaded voices {list(voices)}")
        self.executor = concurrent.futures.ThreadPoolExecutor(config.synth_threads, thread_name_prefix="avatarlab-tts")
        self.counters = SpeechCounters()

    @classmethod
    def create(cls, config: SpeechConfig | None = None) -> "SpeechService":
        """Load every configured voice whose backend is installed, and warm each up.
        ImportError when none is (the server then answers Speak with FAILED_PRECONDITION)."""
        config = config or SpeechConfig()
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
        return cls(config, voices)

    def voices(self) -> list[Synthesizer]:
        return list(self._voices.values())

    def voice(self, voice_id: str) -> Synthesizer:
        voice = self._voices.get(voice_id or self.default_voice)
        if voice is None:
            raise NotFound(f"voice {voice_id!r} does not exist; ServerInfo.voices lists "
                           f"{', '.join(self._voices)}")
        return voice

    def line(self, text: str, voice_id: str, max_text_chars: int) -> tuple[str, Synthesizer]:
        """Validated text and its voice (InvalidArgument, NotFound)."""
        return prepare_text(text, max_text_chars), self.voice(voice_id)

    def speak(self, line: SpeakLine, session: Session) -> AsyncIterator[SpeechEvent]:
        """Run one line through `session`, whose audio input is mono float at the voice's rate."""
        return SpeakSession(session, line.voice, line.text, line.out_rate_hz, self.executor, self.config,
                            self.counters, line.max_frames).events()

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
