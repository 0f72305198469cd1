"""Reading the talking-face dataset (the data pipeline's format) and still face photos.

DATASET/manifest.json: {"version": 1, "layout": FaceLayout, "mel": MelConfig, "fps": 25,
                        "clips": [{"id", "identity", "split", "path", "frames", "seconds", "source"}]}
DATASET/clips/<id>.npz: crops (T,S,S,3) uint8 RGB aligned; audio float32 16 kHz; mel (T_mel, n_mels);
                        lips (T,40,2); mouth_open (T,); valid (T,) bool; matrices (T,2,3).

Only the lower-half `region` of each crop is kept in memory: every stage works on it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import pathlib

import cv2
import numpy as np
import torch

from avatar_service.face.align import FaceLayout, align_matrix, warp_to_crop
from avatar_service.face.lips import centred_lips
from avatar_service.model.features import MelConfig, WindowSpec, log_mel

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclasses.dataclass
class Clip:
    id: str
    identity: str
    split: str
    path: pathlib.Path
    regions: np.ndarray  # (T, H, W, 3) uint8: the generator's region of each aligned crop
    mel: np.ndarray  # (T_mel, n_mels) float32, 100 frames a second
    valid: np.ndarray  # (T,) bool: frames whose alignment the pipeline trusts
    lips: np.ndarray | None = None  # (T, 80) float32: lip shape offsets (centred_lips), in crop widths; NaN where unmeasured
    lip_anchor: np.ndarray | None = None  # (T, 40, 2) float32: the clip's mean lip shape at each frame's position (lip_anchors)

    def __len__(self) -> int:
        return len(self.regions)


def _layout_matches(stored: dict, layout: FaceLayout) -> bool:
    """Crops are comparable when the face sits the same way in them. Pixel size is resized away, and
    region and mask are cut from the full crop here, so only the alignment template must agree."""
    return abs(float(stored["face_scale"]) - layout.face_scale) < 1e-9


def region_of(crops: np.ndarray, layout: FaceLayout) -> np.ndarray:
    """(N, S', S', 3) crops of any size -> (N, H, W, 3) regions at `layout`'s size."""
    s = layout.crop_px
    if crops.shape[1] != s:
        interp = cv2.INTER_AREA if crops.shape[1] > s else cv2.INTER_LINEAR
        crops = np.stack([cv2.resize(c, (s, s), interpolation=interp) for c in crops]) if len(crops) else crops.reshape(0, s, s, 3)
    r0, r1 = layout.region_rows
    return np.ascontiguousarray(crops[:, r0:r1])


class TalkingDataset:
    """All clips of one dataset folder, regions resized to the training layout."""

    def __init__(self, root: str | pathlib.Path, layout: FaceLayout, mel: MelConfig,
                 splits: tuple[str, ...] = ("train", "val")):
        self.root = pathlib.Path(root)
        path = self.root / MANIFEST
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: --data must be a folder written by the data pipeline")
        manifest = json.loads(path.read_text())
        if manifest.get("version") != FORMAT_VERSION:
            raise ValueError(f"{path}: dataset version {manifest.get('version')} is not supported (expected {FORMAT_VERSION})")
        if not _layout_matches(manifest["layout"], layout):
            raise ValueError(f"{path}: crops were aligned with face_scale {manifest['layout']['face_scale']}, the model "
                             f"uses {layout.face_scale}; rebuild the dataset or train with a matching config")
        self.layout, self.mel_config = layout, mel
        self.fps = float(manifest["fps"])
        self.manifest_digest = hashlib.sha1(path.read_bytes()).hexdigest()
        recompute_mel = manifest["mel"] != json.loads(json.dumps(dataclasses.asdict(mel)))
        if recompute_mel:
            log.info("dataset mel settings differ from the model's: recomputing mel from audio")
        self.clips: list[Clip] = []
        for entry in manifest["clips"]:
            if entry["split"] not in splits:
                continue
            with np.load(self.root / entry["path"]) as z:
                crops = z["crops"]
                regions = region_of(crops, layout)
                mel_frames = log_mel(z["audio"], mel) if recompute_mel else z["mel"].astype(np.float32)
                valid = z["valid"].astype(bool)
                lips = anchor = None
                if "lips" in z.files:
                    lips = centred_lips(z["lips"], valid, crops_px=crops.shape[1])
                    anchor = lip_anchors(z["lips"], lips, crops_px=crops.shape[1])
            if len(valid) != len(regions):
                raise ValueError(f"{entry['path']}: {len(regions)} crops but {len(valid)} valid flags")
            self.clips.append(Clip(entry["id"], entry["identity"], entry["split"], self.root / entry["path"],
                                   regions, mel_frames, valid, lips, anchor))
        if not self.clips:
            raise ValueError(f"{path}: no clips in splits {splits}")

    def split(self, name: str) -> list[Clip]:
        return [c for c in self.clips if c.split == name]

    @staticmethod
    def load_audio(clip: Clip) -> np.ndarray:
        """The clip's 16 kHz mono audio, without decompressing its crops."""
        with np.load(clip.path) as z:
            return z["audio"].astype(np.float32)

    def load_media(self, clip: Clip) -> tuple[np.ndarray, np.ndarray]:
        """Full crops (T, S, S, 3) at the training size and the 16 kHz audio, for videos."""
        with np.load(clip.path) as z:
            crops, audio = z["crops"], z["audio"].astype(np.float32)
        s = self.layout.crop_px
        if crops.shape[1] != s:
            crops = np.stack([cv2.resize(c, (s, s), interpolation=cv2.INTER_AREA) for c in crops])
        return crops, audio


class FrameIndex:
    """Uniform sampling over the valid frames of a list of clips (long clips weigh more)."""

    def __init__(self, clips: list[Clip], span: int = 1):
        """`span`: frames needed from the sampled one on (5 for the sync expert's windows)."""
        if not clips:
            raise ValueError("no clips to sample from: the dataset has none in this split")
        self.clips = clips
        rows = []
        for ci, c in enumerate(clips):
            ok = c.valid.copy()
            if span > 1:  # every frame of the window must be valid
                win = np.lib.stride_tricks.sliding_window_view(c.valid, span).all(axis=1)
                ok = np.zeros_like(c.valid)
                ok[: len(win)] = win
            idx = np.flatnonzero(ok)
            rows.append(np.stack([np.full_like(idx, ci), idx], axis=1))
        self.rows = np.concatenate(rows) if rows else np.zeros((0, 2), np.int64)
        if len(self.rows) == 0:
            raise ValueError(f"no valid frames (need {span} in a row) in {len(clips)} clips")
        self.valid_by_clip = [np.flatnonzero(c.valid) for c in clips]

    def __len__(self) -> int:
        return len(self.rows)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """(n, 2) rows of (clip index, frame index)."""
        return self.rows[rng.integers(0, len(self.rows), n)]

    def references(self, rng: np.random.Generator, rows: np.ndarray, min_gap: int = 5) -> np.ndarray:
        """A random other valid frame of the same clip for each row, at least `min_gap` frames away
        where the clip allows it, so the reference shows the person, not the current lip shape."""
        out = np.empty(len(rows), np.int64)
        for k, (ci, i) in enumerate(rows):
            cand = self.valid_by_clip[ci]
            far = cand[np.abs(cand - i) >= min_gap]
            pool = far if len(far) else cand
            out[k] = pool[rng.integers(0, len(pool))]
        return out


def lip_anchors(lips: np.ndarray, offsets: np.ndarray, crops_px: int) -> np.ndarray:
    """(T, 40, 2) lip landmarks in crop pixels and their (T, 80) `centred_lips` offsets -> (T, 40, 2)
    crop-relative: the clip's mean lip shape placed at each frame's lip centroid, i.e. what is left of
    the lips once the offsets are taken away (NaN where the offsets are). A reference frame's anchor is
    what the lip map draws offsets from."""
    return (np.asarray(lips, np.float32) / crops_px - offsets.reshape(len(offsets), -1, 2)).astype(np.float32)


def to_tensor(regions: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float32 in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(regions)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) in [-1, 1] -> (N, H, W, 3) uint8."""
    x = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte()
    return x.permute(0, 2, 3, 1).cpu().numpy()


def mask_regions(regions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Zero (grey in [-1, 1]) the mask box: pose and skin stay, no lip shape leaks through.
    regions (N, 3, H, W); mask (H, W) with 1 where the generator redraws."""
    return regions * (1.0 - mask)


def audio_windows(features: np.ndarray, frames: np.ndarray, fps: float, feat, spec: WindowSpec) -> np.ndarray:
    """(N, 2r+1, dims, 2m+1) windows for video frames `frames` of a clip whose whole-signal feature
    frames (extractor `feat`) are `features` (features.clip_windows from precomputed features)."""
    return spec.gather(features, 0, spec.mel_centres(np.asarray(frames), fps, feat), feat)


def clip_features(ds: "TalkingDataset", feat, cache_dir: pathlib.Path, key: str) -> list[np.ndarray]:
    """Whole-signal feature frames of every clip of `ds` for extractor `feat`: the stored log-mel, or
    computed from the audio once and cached in `cache_dir` (Whisper states: ~1 min for 8 minutes)."""
    from avatar_service.model.features import LogMelFeatures

    if isinstance(feat, LogMelFeatures) and feat.mel == ds.mel_config:
        return [c.mel for c in ds.clips]
    path = cache_dir / f"features_{hashlib.sha1((ds.manifest_digest + key).encode()).hexdigest()[:16]}.npz"
    if path.exists():
        with np.load(path) as z:
            return [z[c.id] for c in ds.clips]
    from tqdm import tqdm

    out = {c.id: feat.all(ds.load_audio(c)) for c in tqdm(ds.clips, desc="audio features", unit="clip")}
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.savez(path.with_suffix(".tmp.npz"), **out)
    path.with_suffix(".tmp.npz").replace(path)
    return [out[c.id] for c in ds.clips]


def load_face_photos(folder: str | pathlib.Path, layout: FaceLayout, cache_dir: pathlib.Path) -> np.ndarray:
    """(N, H, W, 3) uint8 regions of every photo in `folder` with exactly one usable face, aligned like
    the dataset. The aligned crops are cached in `cache_dir`, keyed by folder and layout."""
    from avatar_service.face.detect import FaceDetector, FaceError

    folder = pathlib.Path(folder)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []
    if not files:
        raise FileNotFoundError(f"--faces {folder}: no images (.jpg/.png) there")
    key = hashlib.sha1(json.dumps([str(folder.resolve()), [p.name for p in files],
                                   dataclasses.asdict(layout)]).encode()).hexdigest()[:12]
    cache = cache_dir / f"faces_{key}.npz"
    if cache.exists():
        with np.load(cache) as z:
            return region_of(z["crops"], layout)
    detector, crops, skipped = FaceDetector(), [], 0
    for p in files:
        bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if bgr is None:
            skipped += 1
            continue
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        try:
            face = detector.one_face(rgb, min_face_px=32)
            crops.append(warp_to_crop(rgb, align_matrix(face.landmarks, layout), layout))
        except (FaceError, ValueError):  # no face, several, too small, or degenerate landmarks
            skipped += 1
    if not crops:
        raise ValueError(f"--faces {folder}: no photo had a usable face")
    log.info("aligned %d face photos from %s (%d skipped)", len(crops), folder, skipped)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.savez(cache, crops=np.stack(crops))
    return region_of(np.stack(crops), layout)
