"""A session's mouth stream: per video frame, the 15 viseme weights and the ARKit blendshapes
(face/rig.py) on the audio clock. Every frame of every session carries one, whichever renderer draws
the pixels, and a motion-only session carries nothing else.

A mouth source has the session's feature `window` and `features` (so the session knows when a frame's
audio is in) and `blocks(...)`, the frames' mouth. Two sources:
  AudioMouth  speech audio -> motion (runtime/warp_renderer.py MotionModel) -> rig; Animate, and Speak
              with a voice that gives no phonemes
  TextMouth   speech/text_mouth.py: the voice's own phonemes, exact, for Speak
A motion model with a learnt viseme head (model/motion.py) gives AudioMouth its visemes; without one,
the rig's nearest viseme shape does.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from avatar_service.face.rig import MouthRig
from avatar_service.speech.visemes import SIL


@dataclasses.dataclass(frozen=True)
class MouthBlock:
    """One frame's mouth, in face/rig.py's VISEME_NAMES and BLENDSHAPE_NAMES order."""
    visemes: np.ndarray  # (15,) weights summing to 1
    blendshapes: np.ndarray  # (18,) each in [0, 1]


def mouth_blocks(visemes: np.ndarray, blendshapes: np.ndarray) -> list[MouthBlock]:
    return [MouthBlock(v, b) for v, b in zip(visemes.astype(np.float32), blendshapes.astype(np.float32))]


class AudioMouth:
    def __init__(self, motion, features):
        """motion: runtime.warp_renderer.MotionModel with its rig; features: its audio feature extractor."""
        if motion.rig is None:
            raise FileNotFoundError("the motion model has no mouth_rig.json: run `avatarlab train rig`")
        self.motion, self.rig, self.features = motion, motion.rig, features
        self.window = motion.predictor.config.window

    def blocks(self, samples: np.ndarray, start: int, stop: int, fps: float, cache: dict,
               deadline: float) -> list[MouthBlock]:
        """Frames [start, stop) from the 16 kHz audio so far (a feature-encoder call: off the event loop)."""
        windows = self.window.windows(samples, start, stop, fps, self.features, cache, deadline=deadline)
        motion, voiced = self.motion.predict_gated(windows, samples, start, stop, fps)
        if self.motion.predictor.visemes_head is None:
            visemes = self.rig.visemes(motion, voiced)
        else:  # the learnt head (exact phoneme timings): 0.72 of frames right on held-out synthetic lines,
            # the nearest rig shape 0.27 (docs/speech_to_motion.md); the gate's silence goes to sil as there
            visemes = self.motion.predictor.visemes(windows) * voiced[:, None]
            visemes[:, SIL] += 1.0 - voiced
        return mouth_blocks(visemes, self.rig.blendshapes(motion))
