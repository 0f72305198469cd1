"""A session's mouth stream: per video frame, the 15 viseme weights and the ARKit blendshapes
(face/rig.py) on the audio clock. Every frame of every session carries one, whichever renderer draws
the pixels, and a motion-only session carries nothing else.

A mouth source has the session's feature `window` and `features` (so the session knows when a frame's
audio is in) and `blocks(...)`, the frames' mouth. Two sources:
  AudioMouth  speech audio -> motion (runtime/warp_renderer.py MotionModel) -> rig; Animate, and Speak
              with a voice that gives no phonemes
  TextMouth   speech/text_mouth.py: the voice's own phonemes, exact, for Speak
  MelMouth    the log-mel student (model/motion_student.py) instead of Whisper: motion-only sessions by
              the hundred (setting motion_frontend=mel)
A motion model with a learnt viseme head (model/motion.py) gives AudioMouth its visemes; without one,
the rig's nearest viseme shape does.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
from typing import NamedTuple

import numpy as np

from avatar_service.batching import Batcher
from avatar_service.face.rig import MouthRig
from avatar_service.model.features import analysis_frames, log_mel_of_frames
from avatar_service.model.motion import softmax
from avatar_service.speech.visemes import SIL


class MouthBlock(NamedTuple):
    """One frame's mouth, in face/rig.py's VISEME_NAMES and BLENDSHAPE_NAMES order (a tuple, not a
    dataclass: a server holding 200 motion streams makes 6000 of these a second)."""
    visemes: np.ndarray  # (15,) weights summing to 1
    blendshapes: np.ndarray  # (18,) each in [0, 1]


def mouth_blocks(visemes: np.ndarray, blendshapes: np.ndarray) -> list[MouthBlock]:
    return list(map(MouthBlock, visemes.astype(np.float32), blendshapes.astype(np.float32)))


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
            # the nearest rig shape 0.27 (docs/speech_to_motion.md)
            visemes = gated_visemes(self.motion.predictor.visemes(windows), voiced)
        return mouth_blocks(visemes, self.rig.blendshapes(motion))


def gated_visemes(weights: np.ndarray, voiced: np.ndarray) -> np.ndarray:
    """Viseme weights scaled by the loudness gate, the gate's silence going to `sil`."""
    out = weights * voiced[:, None]
    out[:, SIL] += 1.0 - voiced
    return out


@dataclasses.dataclass
class _MelJob:
    samples: np.ndarray  # the session's 16 kHz audio when it asked (a view: later audio does not change it)
    start: int
    stop: int
    fps: float
    cache: dict  # the session's own: codes of its final mel frames
    deadline: float
    future: concurrent.futures.Future


class MelMouth:
    """The mouth from the log-mel student, for motion-only sessions: no Whisper, about 1 ms of CPU a
    stream second. Every session's ready frames go to one batch thread (batching.Batcher), which per
    batch computes the new mel frames of all queued sessions in one FFT, their per-frame codes, all
    windows' read-out in one matrix product, the loudness gates and the rig. A session awaits its
    future (`submit`), so neither the event loop nor a worker thread waits per session."""

    def __init__(self, motion, max_batch: int = 512, wait_s: float = 0.0):
        """motion: runtime.warp_renderer.MotionModel with its rig and a student. wait_s: how long a batch
        waits for more sessions' chunks (a job costs ~0.55 ms alone, ~0.3 ms in a batch of 4 or more)."""
        if motion.rig is None:
            raise FileNotFoundError("the motion model has no mouth_rig.json: run `avatarlab train rig`")
        if motion.student is None:
            raise FileNotFoundError("the motion model has no log-mel student (motion_student.json): run "
                                    "`avatarlab train motion-student`, or set motion_frontend to whisper")
        self.student, self.rig = motion.student, motion.rig
        self.features = self.student.feature_extractor()
        self.window = self.student.config.window
        self.batcher = Batcher(self._run, name="avatarlab-mel-mouth", max_batch=max_batch, wait_s=wait_s,
                               deadline=lambda job: job.deadline)

    def submit(self, samples: np.ndarray, start: int, stop: int, fps: float, cache: dict,
               deadline: float) -> concurrent.futures.Future:
        """Frames [start, stop) from the audio so far -> a future of their MouthBlocks."""
        fut: concurrent.futures.Future = concurrent.futures.Future()
        self.batcher.submit([_MelJob(samples, start, stop, fps, cache, deadline, fut)])
        return fut

    def blocks(self, samples: np.ndarray, start: int, stop: int, fps: float, cache: dict,
               deadline: float) -> list[MouthBlock]:
        return self.submit(samples, start, stop, fps, cache, deadline).result()

    def _codes(self, job: _MelJob, centres: np.ndarray) -> tuple[int, np.ndarray, int]:
        """(lo, codes the session has of mel frames [lo, ...), the first frame to compute)."""
        off = self.window.offsets
        lo = int(centres[0]) + int(off[0])
        first, have = job.cache.get("mel_first", lo), job.cache.get("mel_codes")
        if have is None or not first <= lo <= first + len(have):
            have = np.zeros((0, self.student.config.frame_dims), np.float32)
        else:
            have = have[lo - first:]
        return lo, have, lo + len(have)

    def _run(self, _key, jobs: list[_MelJob]) -> None:
        # a session that ended while queued (its client left) cancelled its future: skip it; the others
        # can no longer be cancelled once running, so their results always land
        jobs = [job for job in jobs if job.future.set_running_or_notify_cancel()]
        if not jobs:
            return
        try:
            self._compute(jobs)
        except Exception as e:  # every waiting session gets the error, the thread keeps serving
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(e)

    def _compute(self, jobs: list[_MelJob]) -> None:
        mel_cfg, off = self.student.config.mel, self.window.offsets
        plans, frames = [], []
        for job in jobs:
            centres = self.student.mel_centres(np.arange(job.start, job.stop), job.fps)
            lo, have, todo = self._codes(job, centres)
            hi = int(centres[-1]) + int(off[-1]) + 1
            frames.append(analysis_frames(job.samples, mel_cfg, todo, hi - todo))
            plans.append((centres, lo, have, hi - todo))
        new = self.student.codes(log_mel_of_frames(np.concatenate(frames), mel_cfg))
        windows, k = [], 0
        for job, (centres, lo, have, n) in zip(jobs, plans):
            codes = np.concatenate([have, new[k:k + n]])
            k += n
            # keep the codes of final frames only (their audio is all in): the next call starts there
            final = (len(job.samples) - mel_cfg.n_fft // 2) // mel_cfg.hop + 1 - lo
            job.cache["mel_first"], job.cache["mel_codes"] = lo, codes[:max(0, final)]
            windows.append(codes[(centres - lo)[:, None] + off[None, :]])
        motion, logits = self.student.outputs_of_codes(np.concatenate(windows))
        voiced = self.student.gates([(j.samples, j.start, j.stop, j.fps) for j in jobs])
        motion = motion * (self.student.config.articulation * voiced[:, None])
        blocks = mouth_blocks(gated_visemes(softmax(logits), voiced), self.rig.blendshapes(motion))
        k = 0
        for job in jobs:
            n = job.stop - job.start
            job.future.set_result(blocks[k:k + n])
            k += n
