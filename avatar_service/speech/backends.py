"""The TTS backend contract (speech/service.py builds a voice from its VoiceConfig).

Every backend turns text into one float32 mono array per sentence, lazily, so the caller can stream
the first sentence while later ones are still being synthesized, and stop by simply not asking for
more (or by setting `cancel`, which backends that can abort mid-sentence also honour)."""
from __future__ import annotations

import dataclasses
import threading
from typing import Iterator, Protocol

import numpy as np

from avatar_service.speech.config import VoiceConfig


class BackendUnavailable(RuntimeError):
    """The backend's library or voice data is not installed on this machine."""


@dataclasses.dataclass(frozen=True)
class Spoken:
    """One sentence: its audio and what the voice said when, [(ipa, start_s, end_s)] on the sentence's
    own clock (speech/visemes.py maps them to visemes)."""
    audio: np.ndarray  # (N,) float32 in [-1, 1] at the voice's sample_rate_hz
    phonemes: tuple[tuple[str, float, float], ...]


class Synthesizer(Protocol):
    config: VoiceConfig
    backend_name: str  # reported in ServerInfo.voices
    sample_rate_hz: int  # native rate of the arrays `sentences` yields
    license: str  # of the engine and voice data, for ServerInfo.voices

    def sentences(self, text: str, cancel: threading.Event) -> Iterator[np.ndarray]:
        """Validated text -> one (N,) float32 array in [-1, 1] per sentence at `sample_rate_hz`.
        Runs in a worker thread; must be safe to call from several threads at once."""
        ...

    def spoken(self, text: str, cancel: threading.Event) -> Iterator[Spoken]:
        """As `sentences`, with each sentence's phonemes and their timings."""
        ...
