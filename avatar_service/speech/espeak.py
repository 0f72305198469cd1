"""espeak-ng as a light fallback voice: formant synthesis, tiny, robotic but always intelligible.

A ctypes binding to the system libespeak-ng (Debian: `apt-get install espeak-ng` or libespeak-ng1),
in process, so no shell or subprocess is involved: text goes in as a UTF-8 C string with SSML and
phoneme input off. The library keeps global state, so every call holds one module lock; its
synthesis callback aborts a sentence when the session is cancelled or the sentence runs past
VoiceConfig.sentence_timeout_s. espeak-ng is GPL-3.0-or-later."""
from __future__ import annotations

import ctypes
import ctypes.util
import threading
import time
from typing import Iterator

import numpy as np

from avatar_service.speech.backends import BackendUnavailable, Spoken
from avatar_service.speech.config import VoiceConfig
from avatar_service.speech.text import bounded_units, split_sentences

# speak_lib.h
AUDIO_OUTPUT_SYNCHRONOUS = 2
ESPEAK_INITIALIZE_DONT_EXIT = 0x8000  # return errors instead of calling exit()
ESPEAK_INITIALIZE_PHONEME_EVENTS, ESPEAK_INITIALIZE_PHONEME_IPA = 0x0001, 0x0002  # phonemes, as IPA, for visemes
EVENT_LIST_TERMINATED, EVENT_PHONEME = 0, 7
POS_CHARACTER = 1
ESPEAK_CHARS_UTF8 = 1
ESPEAK_RATE = 1  # words a minute, 80..450
DEFAULT_WPM = 175


class Event(ctypes.Structure):  # espeak_EVENT; `id` is a union whose largest member is char[8]
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]


SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(Event))

_lock = threading.Lock()  # libespeak-ng is one global synthesizer
_lib: ctypes.CDLL | None = None
_rate_hz = 0
_sink: dict = {}  # the sentence being synthesized: samples, cancel event, deadline


@SYNTH_CALLBACK
def _on_samples(wav, count, events) -> int:
    if events:  # phoneme events carry the sample they start at, counted from the call's start
        i = 0
        while events[i].type != EVENT_LIST_TERMINATED:
            if events[i].type == EVENT_PHONEME:
                _sink["phonemes"].append((events[i].id.decode("utf-8", "replace"), int(events[i].sample)))
            i += 1
    if wav and count > 0:
        _sink["samples"].append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
    stop = _sink["cancel"].is_set() or time.monotonic() > _sink["deadline"]
    _sink["aborted"] = _sink.get("aborted", False) or stop
    return 1 if stop else 0  # 1 aborts synthesis


def _library() -> tuple[ctypes.CDLL, int]:
    """Load and initialise libespeak-ng once; call with _lock held."""
    global _lib, _rate_hz
    if _lib is not None:
        return _lib, _rate_hz
    name = ctypes.util.find_library("espeak-ng")
    if name is None:
        raise BackendUnavailable("libespeak-ng is not installed (Debian/Ubuntu: apt-get install espeak-ng)")
    lib = ctypes.CDLL(name)
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetSynthCallback.argtypes = [SYNTH_CALLBACK]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                 ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, None, ESPEAK_INITIALIZE_DONT_EXIT
                                 | ESPEAK_INITIALIZE_PHONEME_EVENTS | ESPEAK_INITIALIZE_PHONEME_IPA)
    if rate <= 0:
        raise BackendUnavailable(f"libespeak-ng failed to initialise (code {rate}); is espeak-ng-data installed?")
    lib.espeak_SetSynthCallback(_on_samples)
    _lib, _rate_hz = lib, rate
    return lib, rate


class EspeakSynthesizer:
    backend_name = "espeak-ng"
    license = "espeak-ng GPL-3.0-or-later"

    def __init__(self, cfg: VoiceConfig):
        self.config = cfg
        with _lock:
            lib, self.sample_rate_hz = _library()
            if lib.espeak_SetVoiceByName(cfg.espeak_voice.encode()) != 0:
                raise BackendUnavailable(f"espeak-ng has no voice {cfg.espeak_voice!r}")

    def _say(self, sentence: str, cancel: threading.Event) -> Spoken:
        data = sentence.encode("utf-8")
        with _lock:
            lib, _ = _library()
            lib.espeak_SetVoiceByName(self.config.espeak_voice.encode())  # another voice may have run last
            lib.espeak_SetParameter(ESPEAK_RATE, max(80, min(450, round(DEFAULT_WPM * self.config.speaking_rate))), 0)
            _sink.clear()
            _sink.update(samples=[], phonemes=[], cancel=cancel, deadline=time.monotonic() + self.config.sentence_timeout_s)
            err = lib.espeak_Synth(data, len(data) + 1, 0, POS_CHARACTER, 0, ESPEAK_CHARS_UTF8, None, None)
            samples, events, aborted = _sink["samples"], _sink["phonemes"], _sink.get("aborted", False)
            _sink.clear()
        if err != 0 and not aborted:
            raise RuntimeError(f"espeak-ng failed on a sentence (error {err})")
        if aborted and not cancel.is_set():
            raise TimeoutError(f"espeak-ng took over {self.config.sentence_timeout_s:g} s for one sentence")
        pcm = np.concatenate(samples).astype(np.float32) if samples else np.zeros(0, np.float32)
        peak = float(np.abs(pcm).max()) if len(pcm) else 0.0
        pcm = np.clip(pcm * (self.config.volume / peak), -1.0, 1.0) if peak > 0 else pcm  # same peak level as piper
        # each phoneme lasts until the next starts; before the first is silence (an empty phoneme)
        rate, starts = self.sample_rate_hz, [min(s, len(pcm)) for _, s in events] + [len(pcm)]
        phonemes = [("", 0.0, starts[0] / rate)] if starts[0] > 0 else []
        phonemes += [(ph, s / rate, e / rate) for (ph, _), s, e in zip(events, starts, starts[1:]) if e > s]
        return Spoken(pcm, tuple(phonemes))

    def sentences(self, text: str, cancel: threading.Event) -> Iterator[np.ndarray]:
        for s in self.spoken(text, cancel):
            yield s.audio

    def spoken(self, text: str, cancel: threading.Event) -> Iterator[Spoken]:
        for unit in bounded_units(text, self.config.max_sentence_words):
            for sentence in split_sentences(unit):
                if cancel.is_set():
                    return
                s = self._say(sentence, cancel)
                if len(s.audio):
                    yield s
