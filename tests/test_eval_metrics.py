"""Evaluation metrics on real portraits (SFace identity, mediapipe lips) and synthetic sanity cases."""
from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from avatar_service.evaluation import metrics as M
from avatar_service.face.align import FaceLayout, align_matrix, warp_to_crop
from avatar_service.face.detect import FaceDetector

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get("AVATARLAB_DATA", os.path.join(REPO, "..", "shared", "data"))
PORTRAITS = os.path.join(DATA, "portraits", "real")
needs_portraits = pytest.mark.skipif(not os.path.isdir(PORTRAITS),
                                     reason=f"real portraits not found at {PORTRAITS} (set AVATARLAB_DATA)")
LAYOUT = FaceLayout(128)


@pytest.fixture(scope="module")
def crops():
    """Aligned 128px crops of deepface's test photos: 1, 2, 11 one person; 3 and 8 two others."""
    det, out = FaceDetector(), {}
    for i in (1, 2, 3, 8, 11):
        bgr = cv2.imread(os.path.join(PORTRAITS, f"tests_unit_dataset_img{i}.jpg"))
        rgb = bgr[..., ::-1].copy()
        out[i] = warp_to_crop(rgb, align_matrix(det.one_face(rgb).landmarks, LAYOUT), LAYOUT)
    return out


def shifted(img: np.ndarray, dx: float, dy: float = 0.0) -> np.ndarray:
    return cv2.warpAffine(img, np.float32([[1, 0, dx], [0, 1, dy]]), img.shape[1::-1], borderMode=cv2.BORDER_REPLICATE)


# ---------------------------------------------------------------- pixels

@needs_portraits
def test_psnr_ssim_identical_and_degraded(crops):
    c = crops[1]
    assert M.psnr(c, c) == float("inf")
    assert M.ssim(c, c) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    noisy = [np.clip(c + rng.normal(0, s, c.shape), 0, 255) for s in (2, 8, 25)]
    p = [M.psnr(n, c) for n in noisy]
    s = [M.ssim(n, c) for n in noisy]
    assert p[0] > p[1] > p[2] and s[0] > s[1] > s[2]
    assert p[1] == pytest.approx(10 * np.log10(255 ** 2 / ((noisy[1] - c) ** 2).mean()))
    assert M.ssim(crops[3], c) < s[0]  # another person's face is far less similar than light noise


def test_ssim_matches_a_direct_windowed_computation():
    """Eq. 13 of Wang et al. evaluated pixel by pixel with an explicit 11x11 Gaussian window."""
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 255, (24, 24, 1))
    b = np.clip(a * 0.7 + rng.normal(30, 20, a.shape), 0, 255)
    g = np.exp(-0.5 * (np.arange(-5, 6) / 1.5) ** 2)
    w = np.outer(g, g) / np.outer(g, g).sum()
    vals = []
    for y in range(5, 19):
        for x in range(5, 19):
            pa, pb = a[y - 5:y + 6, x - 5:x + 6, 0], b[y - 5:y + 6, x - 5:x + 6, 0]
            ma, mb = (w * pa).sum(), (w * pb).sum()
            va, vb = (w * pa * pa).sum() - ma ** 2, (w * pb * pb).sum() - mb ** 2
            cov = (w * pa * pb).sum() - ma * mb
            c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
            vals.append((2 * ma * mb + c1) * (2 * cov + c2) / ((ma ** 2 + mb ** 2 + c1) * (va + vb + c2)))
    assert M.ssim(b, a) == pytest.approx(np.mean(vals), abs=1e-9)


def test_flicker_ignores_the_mouth_box():
    rng = np.random.default_rng(2)
    still = np.repeat(rng.integers(0, 256, (1, 128, 128, 3), dtype=np.uint8), 6, axis=0)
    assert M.flicker(still, LAYOUT) == 0.0
    talking = still.copy()
    x0, y0, x1, y1 = (int(v * 128) for v in LAYOUT.mask_box)
    talking[:, y0:y1, x0:x1] = rng.integers(0, 256, (6, y1 - y0, x1 - x0, 3), dtype=np.uint8)
    assert M.flicker(talking, LAYOUT) == 0.0  # the mouth may move
    assert M.flicker(talking) > 10  # without the layout the whole frame counts
    shaky = talking.copy()
    shaky[1::2, :10] = 0  # the forehead strip blinks every other frame
    assert M.flicker(shaky, LAYOUT) > 1.0


# ---------------------------------------------------------------- mouth

@needs_portraits
def test_lmd_measures_a_known_lip_shift(crops):
    c = crops[1]
    track = M.mouth_track(np.stack([c, shifted(c, 3.0), shifted(c, 6.0)]))
    assert np.isfinite(track.lips).all() and 25 < track.inter_ocular[0] < 60
    iod = track.inter_ocular[0]
    assert M.lmd(track.lips[:1], track.lips[:1], iod) == 0.0
    d3 = M.lmd(track.lips[1:2], track.lips[:1], iod)
    d6 = M.lmd(track.lips[2:3], track.lips[:1], iod)
    assert d3 == pytest.approx(3.0 / iod, rel=0.3) and d6 == pytest.approx(6.0 / iod, rel=0.3)
    assert 0 < track.mouth_open[0] < 0.6


def test_lmd_skips_frames_without_landmarks_and_uses_per_frame_iod():
    real = np.zeros((3, 40, 2))
    gen = real + np.array([3.0, 4.0])  # 5 px off
    gen[1] = np.nan
    assert M.lmd(gen, real, np.array([10.0, 10.0, 50.0])) == pytest.approx((0.5 + 0.1) / 2)
    with pytest.raises(ValueError, match="no frame has lip landmarks"):
        M.lmd(np.full((2, 40, 2), np.nan), real[:2], 10.0)


def test_mouth_open_correlation_as_a_lip_sync_measure():
    from scipy.ndimage import gaussian_filter1d

    rng = np.random.default_rng(3)
    # syllable-rate opening: smoothed noise, ~100 ms correlation time like a speech envelope
    real = np.clip(0.1 + gaussian_filter1d(rng.normal(size=250), 1.5), 0, None)
    assert M.mouth_open_correlation(real, real) == pytest.approx(1.0)
    assert M.mouth_open_correlation(np.full_like(real, 0.1), real) == 0.0  # still mouth
    late = np.roll(real, 6)  # 240 ms late
    assert abs(M.mouth_open_correlation(late, real)) < 0.5
    noisy = real + 0.02 * rng.normal(size=real.size)
    with_gaps = noisy.copy()
    with_gaps[::10] = np.nan  # mediapipe misses
    assert M.mouth_open_correlation(with_gaps, real) > M.mouth_open_correlation(late, real)


# ---------------------------------------------------------------- identity

@needs_portraits
def test_identity_cosine_separates_people(crops):
    same = M.identity_cosine(crops[2], crops[1], LAYOUT)
    same2 = M.identity_cosine(np.stack([crops[11], crops[2]]), crops[1], LAYOUT)
    other = M.identity_cosine(np.stack([crops[3], crops[8]]), crops[1], LAYOUT)
    assert same > 0.5 and same2 > 0.5, (same, same2)
    assert other < 0.3, other
    assert M.identity_cosine(crops[1], crops[1], LAYOUT) == pytest.approx(1.0, abs=1e-6)
    e = M.sface_embeddings(np.stack([crops[1], crops[3]]), LAYOUT)
    assert e.shape == (2, 128) and np.allclose(np.linalg.norm(e, axis=1), 1.0)


# ---------------------------------------------------------------- sync expert

def _expert_embeddings(n=120, d=32, seed=4):
    rng = np.random.default_rng(seed)
    audio = rng.normal(size=(n, d))
    video = audio + 0.3 * rng.normal(size=(n, d))  # a well-synced video: each frame near its audio
    return video, audio


def test_lse_in_sync_vs_shifted_audio():
    video, audio = _expert_embeddings()
    good = M.lse(video, audio)
    assert good.offset_frames == 0
    late = M.lse(video, np.roll(audio, 4, axis=0))  # audio 4 frames late: found at offset -4
    assert late.offset_frames == -4
    off = M.lse(video, np.roll(audio, 40, axis=0))  # out of the +-15 search: no offset fits
    assert off.confidence < 0.2 * good.confidence
    assert off.distance > good.distance
    assert good.confidence > 1.0 and good.distance < late.distance + 0.5


def test_sync_scores_calls_the_expert_per_frame():
    video, audio = _expert_embeddings()
    frames = np.zeros((len(video), 8, 8, 3), np.uint8)
    wav = np.zeros(len(video) * 640, np.float32)
    r = M.sync_scores(frames, wav, lambda f: video[: len(f)], lambda a: audio[: len(a) // 640])
    assert r == M.lse(video, audio)
    with pytest.raises(ValueError, match="must match per frame"):
        M.sync_scores(frames, wav, lambda f: video, lambda a: audio[:-1])


def test_lse_ignores_padding_at_far_offsets_for_unit_embeddings():
    """Weakly synced unit embeddings on a short clip: zero padding (distance exactly 1) must not beat
    the true offset, whose distance is above 1 but below the mismatched frames' ~1.41."""
    rng = np.random.default_rng(0)
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    video = unit(rng.standard_normal((20, 64)))
    audio = unit(video + 2.5 * unit(rng.standard_normal((20, 64))))  # cos ~0.37 to its frame, ~0 elsewhere
    r = M.lse(video, audio)
    assert r.offset_frames == 0 and r.distance > 1.0 and r.confidence > 0.2, r


def test_lmd_parts_separate_the_mouths_place_from_its_shape():
    rng = np.random.default_rng(0)
    real = rng.uniform(40, 80, (6, 40, 2))
    iod = 50.0
    moved = real + np.array([3.0, -1.0])  # one fixed misplacement: a per-person correction removes it
    parts = M.lmd_parts(moved, real, iod)
    assert M.lmd(moved, real, iod) == pytest.approx(np.hypot(3, 1) / iod)
    assert parts["lmd_clip_placed"] == pytest.approx(0, abs=1e-12) and parts["lmd_shape"] == pytest.approx(0, abs=1e-12)
    wander = real + np.array([[t % 2 * 2.0, 0.0] for t in range(6)])[:, None]  # 0, 2, 0, 2... px: only per frame
    parts = M.lmd_parts(wander, real, iod)
    assert parts["lmd_clip_placed"] == pytest.approx(1 / iod) and parts["lmd_shape"] == pytest.approx(0, abs=1e-12)
    centre = real.mean(axis=1, keepdims=True)
    wider = centre + (real - centre) * np.array([1.2, 1.0]) + np.array([1.0, 0.0])  # wrong shape, and 1 px off
    parts = M.lmd_parts(wider, real, iod)
    assert parts["lmd_shape"] == pytest.approx(parts["lmd_clip_placed"])  # the offset was the same every frame
    assert 0 < parts["lmd_shape"] < M.lmd(wider, real, iod)
    gaps = wider.copy()
    gaps[0] = np.nan  # a frame mediapipe missed does not poison the clip's mean offset
    assert np.isfinite(M.lmd_parts(gaps, real, iod)["lmd_clip_placed"])
