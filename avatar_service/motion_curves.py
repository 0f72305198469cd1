"""Mouth curves for offline use (`avatarlab render --motion`): one row per frame, the frame's time,
its 15 viseme weights and its ARKit blendshapes, as a studio bakes them into an animation clip.

    JSON  {"fps", "viseme_names", "blendshape_names", "frames": [{"time_s", "visemes", "blendshapes"}]}
    CSV   time_s, viseme_<name> x 15, <blendshape name> x 18 (a header row, then one row a frame)
"""
from __future__ import annotations

import csv
import json
import pathlib

FORMATS = (".json", ".csv")


class MotionCurves:
    """Collects a session's mouth blocks from its SessionStarted and VideoFrame messages."""

    def __init__(self):
        self.fps, self.viseme_names, self.blendshape_names, self.rows = 0, [], [], []

    def started(self, started) -> None:
        """started: pb.SessionStarted (or SpeechStarted.video)."""
        self.fps = started.fps
        self.viseme_names, self.blendshape_names = list(started.viseme_names), list(started.blendshape_names)

    def frame(self, frame) -> None:
        self.rows.append((frame.pts_ms / 1000, [round(v, 5) for v in frame.mouth.visemes],
                          [round(b, 5) for b in frame.mouth.blendshapes]))

    def write(self, path: str | pathlib.Path) -> None:
        path = pathlib.Path(path)
        if path.suffix.lower() == ".csv":
            with path.open("w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["time_s", *(f"viseme_{n}" for n in self.viseme_names), *self.blendshape_names])
                w.writerows([round(t, 4), *v, *b] for t, v, b in self.rows)
        elif path.suffix.lower() == ".json":
            path.write_text(json.dumps({"fps": self.fps, "viseme_names": self.viseme_names,
                                        "blendshape_names": self.blendshape_names,
                                        "frames": [{"time_s": round(t, 4), "visemes": v, "blendshapes": b}
                                                   for t, v, b in self.rows]}))
        else:
            raise ValueError(f"--motion {path}: write .json or .csv")
