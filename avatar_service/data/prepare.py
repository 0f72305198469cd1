"""Turn talking-face videos into a training dataset of aligned face crops, audio, mel and lip measures.

Per clip (stages in order):
  1. decode video on a 25 fps grid and audio at 16 kHz mono (decode.py)
  2. detect the largest face per frame (YuNet) -> 5 landmarks -> similarity transform to the crop
  3. smooth the transforms over time within each run of frames that have a face
  4. warp the crops, measure 40 lip landmarks and mouth opening on them (mediapipe, lips.py)
  5. log-mel of the audio (model.features) and write clips/<id>.npz atomically

Dataset layout: DATASET/manifest.json (see `build_manifest`) and DATASET/clips/<id>.npz with
crops uint8 (T,S,S,3) RGB, audio float32 (N,), mel float32 (T_mel, n_mels), lips float32 (T,40,2),
mouth_open float32 (T,), valid bool (T,), matrices float32 (T,2,3), face_embedding float32 (128,)
(mean SFace embedding: who this is; used to keep one person out of both splits). Audio sample i and video frame k
share one clock: frame k covers [k/25, (k+1)/25) s, i.e. samples [640 k, 640 (k+1)).
"""
from __future__ import annotations

import concurrent.futures as cf
import csv
import dataclasses
import hashlib
import json
import logging
import multiprocessing as mproc
import os
import sys
import time

import av
import cv2
import numpy as np
from tqdm import tqdm

from avatar_service.media.clips import SAMPLE_RATE_HZ, DecodeError, find_videos, iter_frames, load_audio, probe
from avatar_service.face.lips import LIP_INDICES, LipTracker
from avatar_service.face.align import FaceLayout, align_matrix, smooth_matrices, warp_to_crop
from avatar_service.face.detect import FaceDetector
from avatar_service.model.features import MelConfig, log_mel

log = logging.getLogger(__name__)
MANIFEST_VERSION = 1


class ClipSkipped(ValueError):
    """This clip cannot be used; the message is the reason recorded in the manifest."""


@dataclasses.dataclass(frozen=True)
class PrepareConfig:
    crop_px: int = 128  # S: side of the aligned face crop (FaceLayout.crop_px)
    fps: int = 25  # output frame rate; the generator and the mel windows assume it
    val_fraction: float = 0.15  # share of identities held out for validation
    min_val_identities: int = 2
    max_seconds: float | None = None  # cut each clip to this length (tests, quick looks)
    min_seconds: float = 0.5  # shorter clips are skipped: too little context for the audio windows
    min_face_px: int = 40  # smaller faces are upscaled blur: those frames count as invalid
    min_valid_fraction: float = 0.5  # clips where fewer frames have a usable face are skipped
    smooth_sigma_frames: float = 2.0  # temporal smoothing of the crop transform (align.smooth_matrices)
    detect_max_side: int = 640  # YuNet input size; retried at full size when a clip looks faceless
    # Clips whose mean SFace embeddings are at least this similar are one person for the split (labels
    # like voxNN/gridNN are per clip and may repeat a person). Measured on talking/: repeats score
    # 0.65-0.95, the most similar different people 0.41. None: trust the labels.
    same_person_cosine: float | None = 0.55

    @property
    def layout(self) -> FaceLayout:
        return FaceLayout(crop_px=self.crop_px)


# ---------------------------------------------------------------- per clip

def _detect_matrices(info, cfg: PrepareConfig, max_frames: int | None, bar: tqdm):
    """Stage 2: (T, 2, 3) raw transforms, (T,) valid, and why frames were rejected."""
    layout = cfg.layout
    detectors = [FaceDetector(max_side=cfg.detect_max_side)]
    if max(info.width, info.height) > cfg.detect_max_side:
        # Wide shots with a small face: YuNet misses it after downscaling, so fall back to full size.
        detectors.append(FaceDetector(max_side=max(info.width, info.height)))
    mats, valid, small, use = [], [], 0, 0
    for rgb in iter_frames(info, cfg.fps, max_frames):
        faces = detectors[use].detect(rgb)
        if not faces and use == 0 and len(detectors) > 1 and not any(valid):
            faces = detectors[1].detect(rgb)
            if faces:
                use = 1  # stay on the detector that works for this clip
        m, ok = np.zeros((2, 3), np.float32), False
        if faces:
            face = faces[0]  # largest
            if min(face.box[2], face.box[3]) < cfg.min_face_px:
                small += 1
            else:
                try:
                    m, ok = align_matrix(face.landmarks, layout), True
                except ValueError:  # degenerate landmarks: one frame lost, not the clip
                    pass
        mats.append(m)
        valid.append(ok)
        bar.update(1)
    return np.asarray(mats, np.float32).reshape(-1, 2, 3), np.asarray(valid, bool), small


def _runs(valid: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of consecutive True."""
    edges = np.diff(np.concatenate([[0], valid.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def _smooth_runs(mats: np.ndarray, valid: np.ndarray, sigma: float) -> np.ndarray:
    """Stage 3: smooth within each face run (never across a gap, which may be a cut); frames without a
    face take the nearest valid transform so their crop is defined (they stay flagged invalid)."""
    out = mats.copy()
    for a, b in _runs(valid):
        out[a:b] = smooth_matrices(mats[a:b], sigma)
    idx = np.flatnonzero(valid)
    if len(idx) and len(idx) < len(valid):
        t = np.arange(len(valid))
        pos = np.searchsorted(idx, t)
        nxt, prev = idx[np.clip(pos, 0, len(idx) - 1)], idx[np.clip(pos - 1, 0, len(idx) - 1)]
        pick = np.where(np.abs(prev - t) < np.abs(nxt - t), prev, nxt)
        out[~valid] = out[pick[~valid]]
    return out


def prepare_clip(source: str, cfg: PrepareConfig, position: int = 1) -> dict[str, np.ndarray]:
    """All arrays of one clip (see module doc). Raises ClipSkipped / DecodeError with the reason."""
    info = probe(source)
    max_frames = int(cfg.max_seconds * cfg.fps) if cfg.max_seconds else None
    audio = load_audio(info, cfg.max_seconds)
    samples_per_frame = SAMPLE_RATE_HZ // cfg.fps
    name = os.path.basename(source)
    with tqdm(desc=f"{name[:24]:24s} faces", unit="f", leave=False, position=position, mininterval=1.0) as bar:
        mats, valid, small = _detect_matrices(info, cfg, max_frames, bar)
    n = min(len(valid), len(audio) // samples_per_frame)  # both streams must cover every frame
    if n < cfg.min_seconds * cfg.fps:
        raise ClipSkipped(f"too short: {n / cfg.fps:.2f} s of video with audio (< {cfg.min_seconds} s)")
    mats, valid = mats[:n], valid[:n]
    frac = valid.mean()
    if frac < cfg.min_valid_fraction:
        why = f"face smaller than {cfg.min_face_px} px in {small} frames" if small else "no face found"
        raise ClipSkipped(f"{why}: usable face in {frac:.0%} of {n} frames (< {cfg.min_valid_fraction:.0%})")
    mats = _smooth_runs(mats, valid, cfg.smooth_sigma_frames)

    layout = cfg.layout
    s = layout.crop_px
    crops = np.zeros((n, s, s, 3), np.uint8)
    lips = np.full((n, len(LIP_INDICES), 2), np.nan, np.float32)
    mouth = np.full(n, np.nan, np.float32)
    tracker = LipTracker()
    try:
        with tqdm(total=n, desc=f"{name[:24]:24s} crops", unit="f", leave=False, position=position,
                  mininterval=1.0) as bar:
            for k, rgb in enumerate(iter_frames(info, cfg.fps, n)):
                crops[k] = warp_to_crop(rgb, mats[k], layout)
                if valid[k]:
                    lips[k], mouth[k] = tracker.measure(crops[k])
                bar.update(1)
    finally:
        tracker.close()
    audio = audio[: n * samples_per_frame]
    return {
        "face_embedding": _clip_embedding(crops, valid, layout),
        "crops": crops,
        "audio": audio.astype(np.float32),
        "mel": log_mel(audio, MelConfig()),
        "lips": lips,
        "mouth_open": mouth,
        "valid": valid,
        "matrices": mats.astype(np.float32),
    }


def _clip_embedding(crops: np.ndarray, valid: np.ndarray, layout: FaceLayout, n: int = 8) -> np.ndarray:
    """(128,) unit mean SFace embedding of up to n valid crops spread over the clip: who this is."""
    from avatar_service.evaluation.metrics import sface_embeddings

    idx = np.flatnonzero(valid)
    e = sface_embeddings(crops[idx[np.linspace(0, len(idx) - 1, min(n, len(idx))).astype(int)]], layout).mean(axis=0)
    return (e / np.linalg.norm(e)).astype(np.float32)


# ---------------------------------------------------------------- dataset

def write_npz_atomic(path: str, arrays: dict[str, np.ndarray]) -> None:
    tmp = f"{path}.{os.getpid()}.tmp.npz"  # np.savez keeps a name ending in .npz as is
    try:
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json_atomic(path: str, obj) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


def identity_labels(videos: list[str]) -> dict[str, str]:
    """Identity per video: the `identity` column of a manifest.tsv in its folder, else the file stem."""
    labels, seen = {}, {}
    for v in videos:
        folder = os.path.dirname(os.path.abspath(v))
        if folder not in seen:
            seen[folder] = {}
            tsv = os.path.join(folder, "manifest.tsv")
            if os.path.isfile(tsv):
                with open(tsv, newline="") as f:
                    seen[folder] = {r["file"]: r["identity"] for r in csv.DictReader(f, delimiter="\t")
                                    if r.get("file") and r.get("identity")}
        labels[v] = seen[folder].get(os.path.basename(v)) or os.path.splitext(os.path.basename(v))[0]
    return labels


def _hash01(identity: str) -> float:
    """Stable across runs, machines and Python versions (unlike hash())."""
    return int.from_bytes(hashlib.sha256(identity.encode()).digest()[:8], "big") / 2.0 ** 64


def group_people(labels: list[str], embeddings: np.ndarray, min_cosine: float | None) -> dict[str, str]:
    """Person key per identity label: labels joined (transitively) when any of their clips' face
    embeddings reach `min_cosine`; the key is the group's smallest label, so it is stable."""
    parent = {lab: lab for lab in labels}

    def root(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    if min_cosine is not None and len(labels) > 1:
        sim = embeddings @ embeddings.T
        for i, j in zip(*np.nonzero(np.triu(sim >= min_cosine, k=1))):
            a, b = root(labels[i]), root(labels[j])
            if a != b:
                parent[max(a, b)] = min(a, b)
    return {lab: root(lab) for lab in labels}


def split_identities(identities, val_fraction: float, min_val: int = 2) -> dict[str, str]:
    """'train' or 'val' per identity: val when its stable hash falls under val_fraction; topped up to
    `min_val` by lowest hash, and at least one identity always stays in train."""
    ids = sorted(set(identities))
    h = {i: _hash01(i) for i in ids}
    val = {i for i in ids if h[i] < val_fraction}
    target = min(min_val, len(ids) - 1)
    for i in sorted(ids, key=h.get):
        if len(val) >= target:
            break
        val.add(i)
    while len(val) > len(ids) - 1 and val:  # never everything in val
        val.remove(max(val, key=h.get))
    return {i: ("val" if i in val else "train") for i in ids}


def _clip_ids(videos: list[str]) -> dict[str, str]:
    ids, used = {}, set()
    for v in videos:
        base = os.path.splitext(os.path.basename(v))[0]
        cid, n = base, 2
        while cid in used:
            cid, n = f"{base}_{n}", n + 1
        used.add(cid)
        ids[v] = cid
    return ids


# RuntimeError: mediapipe reports graph failures that way
_SKIP_ERRORS = (ClipSkipped, DecodeError, av.FFmpegError, OSError, cv2.error, ValueError, RuntimeError)
_slot = 0


def _init_worker(counter) -> None:
    global _slot
    cv2.setNumThreads(1)  # one process per core already
    with counter.get_lock():
        counter.value += 1
        _slot = counter.value


def _run_one(source: str, clip_path: str, cfg: PrepareConfig) -> dict:
    """Prepare and write one clip; a clip-level problem comes back as {'skipped': reason}."""
    t0 = time.time()
    try:
        arrays = prepare_clip(source, cfg, position=max(1, _slot))
        write_npz_atomic(clip_path, arrays)
        emb = arrays["face_embedding"].tolist()
    except _SKIP_ERRORS as e:
        return {"source": source, "skipped": f"{type(e).__name__}: {e}"}
    mo = arrays["mouth_open"]
    return {"source": source, "frames": int(len(arrays["valid"])), "valid_frames": int(arrays["valid"].sum()),
            "mouth_open_frames": int(np.isfinite(mo).sum()), "embedding": emb, "seconds": round(len(arrays["audio"]) / SAMPLE_RATE_HZ, 3),
            "wall_s": round(time.time() - t0, 2)}


def prepare_dataset(sources: list[str], out_dir: str, cfg: PrepareConfig, workers: int = 1) -> dict:
    """Prepare every video under `sources` into `out_dir`; returns the manifest written there."""
    videos = find_videos(sources)
    if not videos:
        raise FileNotFoundError(f"no videos ({', '.join(sorted({'mp4', 'mov', 'mkv', 'webm', 'mpg', 'avi'}))}) in {sources}")
    labels, ids = identity_labels(videos), _clip_ids(videos)
    os.makedirs(os.path.join(out_dir, "clips"), exist_ok=True)
    jobs = {v: os.path.join(out_dir, "clips", f"{ids[v]}.npz") for v in videos}
    results = []
    with tqdm(total=len(videos), desc="clips", unit="clip", position=0) as overall:
        def done(r):
            results.append(r)
            if "skipped" in r:
                tqdm.write(f"avatarlab prepare: skipped {r['source']}: {r['skipped']}", file=sys.stderr)
            overall.update(1)

        if workers <= 1:
            for v in videos:
                done(_run_one(v, jobs[v], cfg))
        else:
            ctx = mproc.get_context("spawn")  # mediapipe and OpenCV threads do not survive fork
            counter = ctx.Value("i", 0)
            with cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                        initargs=(counter,)) as pool:
                futs = {pool.submit(_run_one, v, jobs[v], cfg): v for v in videos}
                for fut in cf.as_completed(futs):
                    try:
                        done(fut.result())
                    except cf.process.BrokenProcessPool as e:  # a native crash takes the worker down
                        done({"source": futs[fut], "skipped": f"worker crashed: {e}"})
    manifest = build_manifest(results, labels, ids, cfg)
    write_json_atomic(os.path.join(out_dir, "manifest.json"), manifest)
    return manifest


def build_manifest(results: list[dict], labels: dict[str, str], ids: dict[str, str], cfg: PrepareConfig) -> dict:
    ok = sorted((r for r in results if "skipped" not in r), key=lambda r: ids[r["source"]])
    names = [labels[r["source"]] for r in ok]
    person = group_people(names, np.array([r["embedding"] for r in ok]).reshape(len(ok), -1), cfg.same_person_cosine)
    by_person = split_identities(set(person.values()), cfg.val_fraction, cfg.min_val_identities)
    split = {lab: by_person[person[lab]] for lab in names}  # split by person, never by frame
    clips = []
    for r in ok:
        cid = ids[r["source"]]
        clips.append({"id": cid, "identity": labels[r["source"]], "person": person[labels[r["source"]]],
                      "split": split[labels[r["source"]]],
                      "path": f"clips/{cid}.npz", "frames": r["frames"], "seconds": r["seconds"],
                      "source": os.path.abspath(r["source"]), "valid_frames": r["valid_frames"],
                      "mouth_open_frames": r["mouth_open_frames"]})
    return {
        "version": MANIFEST_VERSION,
        "layout": dataclasses.asdict(cfg.layout),
        "mel": dataclasses.asdict(MelConfig()),
        "fps": cfg.fps,
        "clips": clips,
        "skipped": sorted(({"source": os.path.abspath(r["source"]), "reason": r["skipped"]}
                           for r in results if "skipped" in r), key=lambda d: d["source"]),
    }
