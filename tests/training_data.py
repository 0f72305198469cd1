"""A tiny dataset for the training and evaluation tests, written by the data pipeline itself
(`avatar_service.data.prepare`) from three short real clips in ../shared/data, so tests train on exactly
what `avatarlab prepare` writes (crops, lips, mouth opening, mel). The split is fixed here rather than
drawn, so every test run has the same train and validation clips."""
from __future__ import annotations

import json
import os
import pathlib

from avatar_service.data.prepare import PrepareConfig, prepare_dataset
from avatar_service.face import FaceLayout

REPO = pathlib.Path(__file__).resolve().parents[1]
DATA = pathlib.Path(os.environ.get("AVATARLAB_DATA", REPO.parent / "shared" / "data"))
# (file, split): 25 fps, 16 kHz clips of three different people
CLIPS = [("vox19_00010.mp4", "train"), ("vox14_00086.mp4", "train"), ("lrs39_00002.mp4", "val")]


def build(out: pathlib.Path, layout: FaceLayout = FaceLayout(), max_seconds: float = 4.0) -> pathlib.Path:
    cfg = PrepareConfig(crop_px=layout.crop_px, max_seconds=max_seconds, same_person_cosine=None)
    manifest = prepare_dataset([str(DATA / "talking" / name) for name, _ in CLIPS], str(out), cfg)
    split = {pathlib.Path(name).stem: s for name, s in CLIPS}
    if len(manifest["clips"]) != len(CLIPS):
        raise RuntimeError(f"prepare skipped test clips: {manifest['skipped']}")
    for c in manifest["clips"]:
        c["split"] = split[c["id"]]
    order = list(split)
    manifest["clips"].sort(key=lambda c: order.index(c["id"]))
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return out
