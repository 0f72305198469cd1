"""Speak's mouth from what the voice said: its phonemes with their exact timings (speech/backends.py
Spoken) -> the one viseme table (speech/visemes.py) -> per-frame viseme weights with coarticulation ->
motion (each viseme's learnt shape, face/rig.py) -> blendshapes. No audio model runs.

Coarticulation: a frame's weights blend the visemes around its centre time t under an asymmetric
triangular kernel, LEAD_S ahead and LAG_S behind, so the lips move towards the next sound up to
LEAD_S before it starts and release the last one over LAG_S; the dominant viseme changes at (or a
little before) the phoneme boundary.
"""
from __future__ import annotations

import threading

import numpy as np

from avatar_service.runtime.mouth import MouthBlock, mouth_blocks
from avatar_service.speech.visemes import INDEX, SIL, VISEMES, viseme_segments

LEAD_S, LAG_S, STEP_S = 0.07, 0.04, 0.01


class TextMouth:
    def __init__(self, audio_mouth):
        """audio_mouth: the server's AudioMouth (its rig and readiness rule are shared)."""
        self.rig, self.window, self.features = audio_mouth.rig, audio_mouth.window, audio_mouth.features
        self._starts, self._ends, self._labels = [], [], []
        self._lock = threading.Lock()  # sentences arrive from the synthesis task, frames read in a worker
        offsets = np.arange(-LAG_S, LEAD_S + 1e-9, STEP_S)
        self._offsets = offsets
        self._kernel = np.where(offsets < 0, 1 + offsets / (LAG_S + STEP_S), 1 - offsets / (LEAD_S + STEP_S))

    def add(self, phonemes, offset_s: float) -> None:
        """One sentence's [(ipa, start_s, end_s)], its start at offset_s on the session's audio clock."""
        with self._lock:
            for v, s, e in viseme_segments(list(phonemes)):
                self._starts.append(s + offset_s)
                self._ends.append(e + offset_s)
                self._labels.append(INDEX[v])

    def segments(self) -> list[tuple[str, float, float]]:
        """[(viseme, start_s, end_s)] added so far, on the session clock (evaluation/speak_sync.py)."""
        with self._lock:
            return [(VISEMES[v], s, e) for v, s, e in zip(self._labels, self._starts, self._ends)]

    def weights(self, times: np.ndarray) -> np.ndarray:
        """(N,) times -> (N, 15) viseme weights summing to 1."""
        with self._lock:
            starts, ends, labels = (np.asarray(x) for x in (self._starts, self._ends, self._labels))
        t = np.asarray(times, np.float64)[:, None] + self._offsets[None]
        lab = np.full(t.shape, SIL, np.int64)
        if len(starts):
            k = np.clip(np.searchsorted(starts, t, side="right") - 1, 0, len(starts) - 1)
            inside = (t >= starts[k]) & (t < ends[k])
            lab = np.where(inside, labels[k], SIL)
        w = np.zeros((len(t), len(VISEMES)))
        np.add.at(w, (np.repeat(np.arange(len(t)), t.shape[1]), lab.ravel()), np.tile(self._kernel, len(t)))
        return (w / w.sum(1, keepdims=True)).astype(np.float32)

    def blocks(self, samples: np.ndarray, start: int, stop: int, fps: float, cache: dict,
               deadline: float) -> list[MouthBlock]:
        w = self.weights((np.arange(start, stop) + 0.5) / fps)
        return mouth_blocks(w, self.rig.blendshapes(self.rig.motion_of_visemes(w)))
