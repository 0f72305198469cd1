"""The phone-recognition baseline (what Rhubarb Lip Sync does): pocketsphinx recognises phones in the
audio (its US English acoustic model with a phone language model, no words), each phone becomes its
viseme (speech/visemes.py), and each viseme moves the mouth to the mean motion the training clips
show while pocketsphinx hears it. Offline, whole clip at once, so it even sees the future: a
generous baseline for the streaming model to beat."""
from __future__ import annotations

import functools
import os

import numpy as np

from avatar_service.speech.visemes import VISEMES, frame_labels, viseme_segments

FRAME_S = 0.01  # pocketsphinx's frame


# ARPAbet (CMUdict, pocketsphinx) -> IPA, so recognised phones go through speech/visemes.py's TABLE.
ARPABET: dict[str, str] = {
    "AA": "ɑ", "AE": "æ", "AH": "ʌ", "AO": "ɔ", "AW": "aʊ", "AY": "aɪ", "B": "b", "CH": "tʃ", "D": "d", "DH": "ð",
    "EH": "ɛ", "ER": "ɚ", "EY": "eɪ", "F": "f", "G": "ɡ", "HH": "h", "IH": "ɪ", "IY": "i", "JH": "dʒ", "K": "k",
    "L": "l", "M": "m", "N": "n", "NG": "ŋ", "OW": "oʊ", "OY": "ɔɪ", "P": "p", "R": "ɹ", "S": "s", "SH": "ʃ",
    "T": "t", "TH": "θ", "UH": "ʊ", "UW": "u", "V": "v", "W": "w", "Y": "j", "Z": "z", "ZH": "ʒ", "SIL": "",
}


def arpabet_to_ipa(phone: str) -> str:
    """One ARPAbet phone (stress digits and pocketsphinx fillers such as +NSN+ allowed) -> IPA."""
    p = phone.strip().upper().rstrip("012")
    if p.startswith("+") or p.startswith("<") or p == "":
        return ""  # noise, breath, sentence marks: no mouth shape
    if p not in ARPABET:
        raise KeyError(f"unknown ARPAbet phone {phone!r}")
    return ARPABET[p]


@functools.lru_cache(maxsize=1)
def _decoder():
    """One allphone decoder per process (loading it takes a second; callers use it one at a time)."""
    import pocketsphinx
    from pocketsphinx import Decoder

    model = os.path.join(os.path.dirname(pocketsphinx.__file__), "model", "en-us")
    return Decoder(hmm=os.path.join(model, "en-us"), allphone=os.path.join(model, "en-us-phone.lm.bin"),
                   lw=2.0, pip=0.3, beam=1e-10, pbeam=1e-10, loglevel="FATAL")


def recognise_phones(audio16k: np.ndarray, decoder=None) -> list[tuple[str, float, float]]:
    """[(ipa, start_s, end_s)] of the phones pocketsphinx hears."""
    d = decoder or _decoder()
    d.start_utt()
    d.process_raw((np.clip(audio16k, -1, 1) * 32767).astype("<i2").tobytes(), full_utt=True)
    d.end_utt()
    return [(arpabet_to_ipa(s.word), s.start_frame * FRAME_S, (s.end_frame + 1) * FRAME_S) for s in d.seg()]


def clip_visemes(audio16k: np.ndarray, n_frames: int, fps: float = 25.0, decoder=None) -> np.ndarray:
    """(n_frames,) viseme index per video frame."""
    return frame_labels(viseme_segments(recognise_phones(audio16k, decoder)), n_frames, fps)


class PhoneBaseline:
    """Per-viseme mean motion (K,) from training clips; predict = that mean at each frame."""

    def __init__(self, table: np.ndarray):
        self.table = table  # (15, K)

    @classmethod
    def fit(cls, labels: list[np.ndarray], targets: list[np.ndarray]) -> "PhoneBaseline":
        lab = np.concatenate(labels)
        y = np.concatenate(targets)
        ok = np.isfinite(y).all(1)
        table = np.zeros((len(VISEMES), y.shape[1]), np.float32)
        for v in range(len(VISEMES)):
            sel = ok & (lab == v)
            if sel.any():
                table[v] = y[sel].mean(0)
        return cls(table)

    def predict(self, labels: np.ndarray) -> np.ndarray:
        return self.table[labels]
