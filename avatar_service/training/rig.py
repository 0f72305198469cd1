"""`avatarlab train rig`: fit face/rig.py's mouth rig beside a motion model (closed form, a few minutes).

- Blendshape scales: each raw measure's 95th percentile over the prepared clips' *measured* motion
  (their face meshes about each person's closed mouth), so 1.0 is a wide but real movement.
- Viseme shapes: the mean motion the speech model gives each viseme's frames on lines the piper voice
  says, whose phoneme timings are exact (its duration alignments, speech/visemes.py's table). Shapes
  are the model's own, so the nearest-shape read-out of a stream matches what the model does.
"""
from __future__ import annotations

import json
import logging
import pathlib
import threading

import numpy as np

from avatar_service.face.rig import BLENDSHAPE_NAMES, MouthRig, raw_measures
from avatar_service.speech.visemes import SIL, VISEMES, frame_labels, viseme_segments

log = logging.getLogger(__name__)

# Lines covering every viseme in several contexts (they need not mean anything).
LINES = (
    "The quick brown fox jumps over the lazy dog.",
    "Peter picked a peck of pickled peppers for the big party.",
    "Five violins were very far from the festival.",
    "Think of three things that the other brother threw.",
    "Do not take the red car to town today.",
    "Kate could not get the green coat back.",
    "Charlie chose cheap shoes and a beige jacket.",
    "Sue sees six silly seals sitting in the sun.",
    "Nine lonely lions lay in the long line.",
    "Robert ran around the rugged rock really fast.",
    "Father saw the large calm palm on the far farm.",
    "Ted said the red bed was better than the blue one.",
    "Little kids in the city fit into big chairs.",
    "Go home, Joe, before the snow gets cold.",
    "Who knew the moon could move through the room so soon?",
    "Would you look at the good book he took?",
    "Hello, I am your guide. Follow me to the old castle by the river.",
    "We should buy some bread, milk, and apples on the way.",
)


def measured_motion(dataset: str, basis) -> np.ndarray:
    """(N, K) every usable frame's measured motion about its person's closed mouth, spread units."""
    from avatar_service.data.motion_clips import load_clips

    _, clips = load_clips(dataset, basis)
    out = [c.targets(basis) for c in clips]
    m = np.concatenate(out)
    return m[np.isfinite(m).all(1)].astype(np.float32)


def fit_scales(rig: MouthRig, motion: np.ndarray, quantile: float = 0.95) -> np.ndarray:
    raw = rig.raw(motion)
    scales = np.quantile(np.maximum(raw, 0), quantile, axis=0)
    # a measure that barely moves in real speech keeps a scale of 1 mm-ish, so noise stays near 0
    return np.maximum(scales, 0.01).astype(np.float32)


def fit_viseme_shapes(model, voice, fps: float = 25.0, lines=LINES) -> tuple[np.ndarray, dict]:
    """(15, K) mean predicted motion per viseme over the voice's lines; counts of frames per viseme."""
    import soxr

    sums, counts = np.zeros((len(VISEMES), model.basis.n_components)), np.zeros(len(VISEMES), np.int64)
    for text in lines:
        for s in voice.spoken(text, threading.Event()):
            audio = soxr.resample(s.audio, voice.sample_rate_hz, 16000).astype(np.float32)
            n = int(len(audio) / 16000 * fps)
            motion = model.predict_clip(audio, n, fps)
            labels = frame_labels(viseme_segments(list(s.phonemes)), n, fps)
            np.add.at(sums, labels, motion)
            np.add.at(counts, labels, 1)
    shapes = sums / np.maximum(counts, 1)[:, None]
    shapes[SIL] = 0.0  # silence is the closed mouth by definition (the gate only mostly closes it)
    return shapes.astype(np.float32), dict(zip(VISEMES, counts.tolist()))


def fit(dataset: str, folder: str, voice_id: str = "en_US-joe-medium") -> dict:
    from avatar_service.runtime.warp_renderer import MotionModel
    from avatar_service.speech.config import DEFAULT_VOICES
    from avatar_service.speech.service import load_voice

    model = MotionModel.from_pretrained(folder)
    voice = load_voice(next(v for v in DEFAULT_VOICES if v.voice_id == voice_id))
    shapes, counts = fit_viseme_shapes(model, voice)
    rig = MouthRig(model.basis, np.ones(len(BLENDSHAPE_NAMES), np.float32), shapes)
    rig.scales = fit_scales(rig, measured_motion(dataset, model.basis))
    notes = {"fitted_on": {"scales": f"95th percentile of the measured motion of {dataset}",
                           "viseme_shapes": f"{voice_id} saying {len(LINES)} lines, frames per viseme {counts}"}}
    rig.save_pretrained(folder, notes)
    log.info("rig: scales %s", dict(zip(BLENDSHAPE_NAMES, np.round(rig.scales, 4).tolist())))
    return notes


def run(args) -> int:
    print(json.dumps(fit(args.data, args.motion), indent=1))
    return 0


def register(stages) -> None:
    s = stages.add_parser("rig", help="blendshape scales and viseme shapes of the mouth rig, beside a motion model")
    s.add_argument("--data", required=True, help="prepared dataset (its clips' measured motion sets the scales)")
    s.add_argument("--motion", default=str(pathlib.Path(__file__).resolve().parents[1] / "assets" / "motion"),
                   help="motion model folder; mouth_rig.json is written there (default: the embedded one)")
    s.set_defaults(func=run)
