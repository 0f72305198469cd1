"""A tiny dataset in the data pipeline's exact format, built from real clips in ../shared/data, for
the training tests. (The pipeline itself adds lip landmarks and mouth opening; they are NaN here,
which training does not read.)"""
from __future__ import annotations

import dataclasses
import json
import os
import pathlib

import av
import numpy as np

from avatar_service.face import FaceDetector, FaceError, FaceLayout, align_matrix, warp_to_crop
from avatar_service.face.align import smooth_matrices
from avatar_service.model.features import MelConfig, log_mel

REPO = pathlib.Path(__file__).resolve().parents[1]
DATA = pathlib.Path(os.environ.get("AVATARLAB_DATA", REPO.parent / "shared" / "data"))
# 25 fps, 16 kHz mono face crops: (file, identity, split, max frames)
CLIPS = [("vox19_00010.mp4", "vox19", "train", 100), ("vox14_00086.mp4", "vox14", "train", 60),
         ("lrs39_00002.mp4", "lrs39", "val", 35)]


def _decode(path: pathlib.Path, max_frames: int) -> tuple[list[np.ndarray], np.ndarray]:
    with av.open(str(path)) as c:
        frames = []
        for f in c.decode(video=0):
            frames.append(f.to_ndarray(format="rgb24"))
            if len(frames) == max_frames:
                break
    with av.open(str(path)) as c:
        res = av.AudioResampler(format="flt", layout="mono", rate=16000)
        pcm = [r.to_ndarray().reshape(-1) for f in c.decode(audio=0) for r in res.resample(f)]
        pcm += [r.to_ndarray().reshape(-1) for r in res.resample(None)]
    audio = np.concatenate(pcm).astype(np.float32)[: int(len(frames) / 25 * 16000)]
    return frames, audio


def build(out: pathlib.Path, layout: FaceLayout = FaceLayout(), mel: MelConfig = MelConfig()) -> pathlib.Path:
    det = FaceDetector()
    entries = []
    (out / "clips").mkdir(parents=True, exist_ok=True)
    for name, ident, split, n in CLIPS:
        frames, audio = _decode(DATA / "talking" / name, n)
        mats, valid, last = [], [], None
        for rgb in frames:
            try:
                last = align_matrix(det.one_face(rgb, min_face_px=20).landmarks, layout)
                valid.append(True)
            except (FaceError, ValueError):
                valid.append(False)
            mats.append(last if last is not None else np.eye(2, 3, dtype=np.float32))
        mats = smooth_matrices(np.stack(mats))
        crops = np.stack([warp_to_crop(f, m, layout) for f, m in zip(frames, mats)])
        t = len(frames)
        cid = name.rsplit(".", 1)[0]
        np.savez(out / "clips" / f"{cid}.npz", crops=crops, audio=audio, mel=log_mel(audio, mel),
                 lips=np.full((t, 40, 2), np.nan, np.float32), mouth_open=np.full(t, np.nan, np.float32),
                 valid=np.array(valid), matrices=mats.astype(np.float32))
        entries.append({"id": cid, "identity": ident, "split": split, "path": f"clips/{cid}.npz", "frames": t,
                        "seconds": t / 25, "source": f"talking/{name}"})
    manifest = {"version": 1, "layout": dataclasses.asdict(layout), "mel": dataclasses.asdict(mel), "fps": 25,
                "clips": entries, "skipped": []}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return out
