"""Phonemes -> the 15 visemes game engines use (Oculus/Meta LipSync's set, also uLipSync's and most
ARKit rigs' viseme tables): the one table of the project.

Phonemes arrive as IPA, from espeak-ng's phoneme events or piper's alignments (piper phonemizes with
espeak-ng, so both speak the same IPA). A phoneme may be several code points (a diphthong 'aɪ', an
affricate 'tʃ', an r-coloured 'aɪɚ'); `visemes_of` splits it into the visemes it moves through, and
`viseme_segments` shares its time between them. Stress and length marks, and piper's word-boundary
token, carry no mouth shape of their own: they take their neighbour's viseme (a stress mark timed on its
own, the next one's). 'h' and the glottal stop shape the mouth like the sound that follows them.
"""
from __future__ import annotations

import numpy as np

VISEMES = ("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou")
INDEX = {v: i for i, v in enumerate(VISEMES)}
SIL = INDEX["sil"]

# IPA (as espeak-ng writes it) -> viseme. Oculus' reference words: PP "put", FF "far", TH "think",
# DD "tip", kk "call", CH "chair", SS "sir", nn "lot", RR "red", aa "car", E "bed", ih "tip", oh "toe",
# ou "book".
TABLE: dict[str, str] = {
    # silence and pauses (espeak-ng's pause event is an empty phoneme; piper's BOS/EOS and punctuation)
    "": "sil", "_": "sil", "^": "sil", "$": "sil", ".": "sil", ",": "sil", "?": "sil", "!": "sil",
    ";": "sil", ":": "sil", "—": "sil", "…": "sil",
    # lips together
    "p": "PP", "b": "PP", "m": "PP",
    # lower lip to teeth
    "f": "FF", "v": "FF",
    # tongue between teeth
    "θ": "TH", "ð": "TH",
    # tongue tip to ridge
    "t": "DD", "d": "DD", "ɾ": "DD",
    # back of the tongue
    "k": "kk", "g": "kk", "ɡ": "kk", "ŋ": "kk", "x": "kk",
    # rounded, pushed-out lips with the teeth close
    "tʃ": "CH", "dʒ": "CH", "ʃ": "CH", "ʒ": "CH",
    # teeth close, lips spread
    "s": "SS", "z": "SS",
    "n": "nn", "l": "nn", "ɫ": "nn",
    "ɹ": "RR", "r": "RR", "ɚ": "RR", "ɝ": "RR",
    # vowels by openness and rounding
    "a": "aa", "ɑ": "aa", "æ": "aa", "ʌ": "aa", "ɐ": "aa", "ᵻ": "ih",
    "e": "E", "ɛ": "E", "ə": "E", "ɜ": "E",
    "i": "ih", "ɪ": "ih", "j": "ih", "ɨ": "ih", "y": "ih",
    "o": "oh", "ɔ": "oh", "ɒ": "oh",
    "u": "ou", "ʊ": "ou", "w": "ou", "ʍ": "ou", "ɵ": "ou", "ʉ": "ou",
}
# No mouth shape of their own: stress and length marks, diacritics (syllabic, aspirated, dental,
# palatalised, ...), piper's
# word boundary. They merge into the phoneme before them (or after, at the start of a line).
TRANSPARENT = frozenset("ˈˌːˑ̩ʰ̪̯̃̆ʲʷˠ ")
# Shaped like the next sound (the lips anticipate the vowel through 'h').
LIKE_NEXT = frozenset("hʔ")
# Stress marks stand before the syllable they mark: one that comes as a phoneme of its own (piper's
# alignments time it) belongs to the sound after it, not before.
STRESS = frozenset("ˈˌ")


def visemes_of(phoneme: str) -> list[str]:
    """One IPA phoneme (possibly several code points) -> the visemes it moves through, in order.
    Unknown symbols raise KeyError naming them, so a new voice's phoneme set is noticed."""
    if phoneme in TABLE:
        return [TABLE[phoneme]]
    if phoneme and set(phoneme) <= STRESS:
        return ["<next>"]
    out: list[str] = []
    i = 0
    while i < len(phoneme):
        two = phoneme[i: i + 2]
        if two in TABLE:  # affricates tʃ dʒ
            out.append(TABLE[two])
            i += 2
            continue
        ch = phoneme[i]
        i += 1
        if ch in TRANSPARENT:
            continue
        if ch in LIKE_NEXT:
            out.append("<next>")
            continue
        if ch not in TABLE:
            raise KeyError(f"no viseme for phoneme symbol {ch!r} (in {phoneme!r}): add it to speech/visemes.py TABLE")
        out.append(TABLE[ch])
    return out


def viseme_segments(phonemes: list[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    """[(ipa, start_s, end_s)] -> [(viseme, start_s, end_s)], contiguous, in order. A phoneme that
    moves through several visemes shares its time equally; transparent symbols extend their
    neighbour; 'h' takes the next viseme."""
    raw: list[list] = []
    for ph, start, end in phonemes:
        vs = visemes_of(ph)
        if not vs:  # transparent: the previous segment (or the next, at the start) takes its time
            raw.append([None, start, end])
            continue
        step = (end - start) / len(vs)
        raw.extend([v, start + k * step, start + (k + 1) * step] for k, v in enumerate(vs))
    # resolve 'like next' backwards, transparent forwards then backwards
    nxt = "sil"
    for seg in reversed(raw):
        if seg[0] == "<next>":
            seg[0] = nxt
        elif seg[0] is not None:
            nxt = seg[0]
    prev = None
    for seg in raw:
        if seg[0] is None:
            seg[0] = prev
        prev = seg[0] if seg[0] is not None else prev
    nxt = "sil"
    for seg in reversed(raw):
        if seg[0] is None:
            seg[0] = nxt
        nxt = seg[0]
    merged: list[tuple[str, float, float]] = []
    for v, s, e in raw:
        if merged and merged[-1][0] == v and abs(merged[-1][2] - s) < 1e-6:
            merged[-1] = (v, merged[-1][1], e)
        else:
            merged.append((v, s, e))
    return merged


def frame_labels(segments: list[tuple[str, float, float]], n_frames: int, fps: float) -> np.ndarray:
    """(n_frames,) viseme index at each video frame's centre time; `sil` outside the segments."""
    centres = (np.arange(n_frames) + 0.5) / fps
    out = np.full(n_frames, SIL, np.int64)
    for v, s, e in segments:
        out[(centres >= s) & (centres < e)] = INDEX[v]
    return out
