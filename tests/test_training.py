"""Training stages on the tiny config, on CPU, with real faces and speech from ../shared/data."""
from __future__ import annotations

import json
import os
import pathlib
import re
import socket
import subprocess
import sys

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from avatar_service.face import FaceLayout
from avatar_service.model import FaceGenerator, GeneratorConfig
from avatar_service.training.cli import main as train_main
from avatar_service.training.config import TrainConfig
from avatar_service.training.dataset import (FrameIndex, TalkingDataset, audio_windows, load_face_photos,
                                             mask_regions, to_tensor)
from avatar_service.training.runtime import Runtime

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import training_data  # noqa: E402

pytestmark = pytest.mark.slow  # training stages on a prepared dataset: `pytest -m "not slow"` skips it

NO_DATA = f"real data absent at {training_data.DATA} (set AVATARLAB_DATA to the shared data folder)"

TINY = GeneratorConfig.tiny()
CPU = Runtime(device=torch.device("cpu"))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: on a shared 2-core machine, OpenMP threads that spin-wait for a busy
    core make tiny-model steps tens of times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> pathlib.Path:
    """Three real clips (two train identities, one val) in the pipeline's format, 128 px crops."""
    if not (training_data.DATA / "talking").is_dir():
        pytest.skip(NO_DATA)
    return training_data.build(tmp_path_factory.mktemp("talking"))


@pytest.fixture(scope="module")
def ae_model(dataset, tmp_path_factory) -> pathlib.Path:
    """A tiny autoencoder stage run through the CLI (the denoiser's --init)."""
    out = tmp_path_factory.mktemp("ae")
    assert train_main(["train", "autoencoder", "--data", str(dataset), "--out", str(out), "--config", "tiny",
                       "--steps", "3", "--batch-size", "4", "--device", "cpu", "--faces", "none"]) == 0
    return out / "model"


def fit(objective: torch.nn.Module, batch: dict, steps: int, lr: float) -> tuple[float, float]:
    """Loss on one fixed batch before and after `steps` Adam steps on it."""
    def loss():
        torch.manual_seed(0)  # the autoencoder's posterior sample is the only randomness left
        return objective(**batch)[0]

    opt = torch.optim.Adam([p for p in objective.parameters() if p.requires_grad], lr=lr)
    with torch.no_grad():
        before = loss().item()
    for _ in range(steps):
        opt.zero_grad()
        loss().backward()
        opt.step()
    with torch.no_grad():
        return before, loss().item()


def test_reader_resizes_regions_masks_and_windows(dataset):
    ds = TalkingDataset(dataset, TINY.layout, TINY.mel)
    assert [c.split for c in ds.clips] == ["train", "train", "val"]
    h, w = TINY.layout.region_shape
    clip = ds.clips[0]
    assert clip.regions.shape == (100, h, w, 3) and clip.regions.dtype == np.uint8
    x = to_tensor(clip.regions[:2])
    mask = torch.from_numpy(TINY.layout.region_mask())
    masked = mask_regions(x, mask)
    assert torch.all(masked[:, :, mask > 0] == 0)  # grey: no lip pixels survive
    assert torch.equal(masked[:, :, mask == 0], x[:, :, mask == 0])
    idx = FrameIndex(ds.split("train"))
    rows = idx.sample(np.random.default_rng(0), 64)
    refs = idx.references(np.random.default_rng(0), rows)
    assert np.all(np.abs(refs - rows[:, 1]) >= 5)
    win = audio_windows(clip.mel, np.array([0, 50]), ds.fps, TINY.feature_extractor(), TINY.window)
    assert win.shape == (2, 5, TINY.mel.n_mels, 17)
    other = FaceLayout(face_scale=0.8)  # faces aligned differently: the crops do not fit the model
    with pytest.raises(ValueError, match="face_scale"):
        TalkingDataset(dataset, other, TINY.mel)


def test_lip_coefficients_are_whitened_and_track_mouth_opening(dataset):
    """The denoiser's lip condition: PCA of per-clip-centred mediapipe lips. On real speech its first
    component must follow the measured inner-lip opening, and training frames' coefficients are whitened."""
    from avatar_service.training.denoiser import lip_basis, lip_coefficients

    ds = TalkingDataset(dataset, TINY.layout, TINY.mel)
    train = ds.split("train")
    basis, std = lip_basis(train, 4)
    assert np.allclose(basis.T @ basis, np.eye(4), atol=1e-5)
    coef = np.concatenate([lip_coefficients(c.lips, basis, std) for c in train])
    coef = coef[np.isfinite(coef).all(axis=1)]
    assert len(coef) > 100 and np.allclose(coef.std(axis=0), 1.0, atol=0.05)
    np.testing.assert_array_equal(lip_basis(train, 4)[0], basis)  # same data, same basis (signs fixed)
    for clip in train:
        with np.load(clip.path) as z:
            opening = z["mouth_open"]
        c = lip_coefficients(clip.lips, basis, std)
        ok = np.isfinite(opening) & np.isfinite(c).all(axis=1)
        r = max(abs(np.corrcoef(c[ok, k], opening[ok])[0, 1]) for k in range(4))  # the top two are often lip position
        assert r > 0.6, (clip.id, r)


def test_lip_anchor_plus_offsets_gives_back_the_measured_lips(dataset):
    """The lip map's geometry: a frame's anchor (clip mean shape at its centroid) plus its centred offsets
    is exactly its measured lips (crop-relative)."""
    ds = TalkingDataset(dataset, TINY.layout, TINY.mel)
    clip = ds.split("train")[0]
    with np.load(clip.path) as z:
        lips, valid, px = z["lips"], z["valid"].astype(bool), z["crops"].shape[1]
    ok = valid & np.isfinite(lips).all(axis=(1, 2))
    rebuilt = clip.lip_anchor + clip.lips.reshape(-1, 40, 2)
    np.testing.assert_allclose(rebuilt[ok], lips[ok] / px, atol=1e-5)
    assert np.isnan(clip.lip_anchor[~ok]).all()


def test_stretch_moves_latents_and_lip_points_together():
    """shape_aug stretches the cached latents and the lip points by one transform: a bump drawn at a
    point in latent space lands where the stretched point says."""
    from avatar_service.training.denoiser import stretch

    layout = GeneratorConfig().layout  # 128 px crop, 8x16 latents
    h, w = layout.region_shape
    lh, lw = h // 8, w // 8
    point = torch.tensor([[[0.62, 0.80]]])  # crop-relative
    centre = torch.tensor([0.5, 0.7])
    ys, xs = (torch.arange(lh) + 0.5) * 8, (torch.arange(lw) + 0.5) * 8

    def bump(p, sx=12.0, sy=12.0):  # (1, 1, lh, lw): a Gaussian at crop-relative p, sampled at cell centres
        px, py = p[0] * layout.crop_px, p[1] * layout.crop_px - layout.region_rows[0]
        return torch.exp(-(ys[:, None] - py) ** 2 / (2 * sy ** 2) - (xs[None, :] - px) ** 2 / (2 * sx ** 2))[None, None]

    def peak(z):  # sub-cell peak position in region pixels, by a weighted centroid
        wgt = z[0, 0].clamp_min(0) ** 4
        return float((wgt.sum(0) * xs).sum() / wgt.sum()), float((wgt.sum(1) * ys).sum() / wgt.sum())

    scale = torch.tensor([[1.15, 0.9]])
    (moved,), pts = stretch([bump(point[0, 0])], point, scale, centre, layout)
    expect = centre + (point[0, 0] - centre) * scale[0]
    np.testing.assert_allclose(pts[0, 0].numpy(), expect.numpy(), atol=1e-6)
    stretched = bump(expect, 12.0 * 1.15, 12.0 * 0.9)  # the same Gaussian, stretched analytically
    (px, py), (ex, ey) = peak(moved), peak(stretched)
    assert abs(px - ex) < 0.5 and abs(py - ey) < 0.5, ((px, py), (ex, ey))
    assert (moved - stretched)[..., 1:-1, 1:-1].abs().max() < 0.1  # bilinear on 8 px cells; edges border-padded
    (same,), _ = stretch([bump(point[0, 0])], point, torch.ones(1, 2), centre, layout)
    torch.testing.assert_close(same, bump(point[0, 0]), atol=1e-5, rtol=0)


def test_face_photos_are_aligned_and_cached(photo_folder, tmp_path):
    src = photo_folder
    regions = load_face_photos(src, TINY.layout, tmp_path / "cache")
    assert regions.shape[1:] == (*TINY.layout.region_shape, 3) and 1 <= len(regions) <= 4
    assert len(list((tmp_path / "cache").glob("faces_*.npz"))) == 1
    assert np.array_equal(load_face_photos(src, TINY.layout, tmp_path / "cache"), regions)


def test_autoencoder_steps_lower_loss_on_a_fixed_real_batch(dataset, tmp_path):
    from avatar_service.training.autoencoder import AutoencoderStage

    tc = TrainConfig(batch_size=8, warmup_steps=0)
    stage = AutoencoderStage(CPU, tc, tmp_path, str(dataset), TINY)
    batch = stage.batch(np.random.default_rng(0))
    before, after = fit(stage.trainable, batch, steps=25, lr=3e-3)
    assert after < 0.8 * before, (before, after)


def test_autoencoder_run_saves_generator_with_latent_statistics(ae_model):
    g = FaceGenerator.from_pretrained(ae_model)
    assert g.config == TINY
    assert not torch.allclose(g.latent_std, torch.ones_like(g.latent_std))
    run = ae_model.parent
    assert list((run / "samples").glob("autoencoder_*.png"))
    assert list((run / "tensorboard").iterdir())


def test_denoiser_steps_lower_loss_on_a_fixed_real_batch(dataset, ae_model, tmp_path):
    from avatar_service.training.denoiser import DenoiserStage

    tc = TrainConfig(batch_size=8, warmup_steps=0, ema_decay=0, shape_aug=0.15)  # stretched half-batch, lip map (tiny)
    stage = DenoiserStage(CPU, tc, tmp_path, str(dataset), str(ae_model))
    batch = stage.batch(np.random.default_rng(0))  # fixed t, noise and audio drop too
    frozen = {k: v.clone() for k, v in stage.generator.autoencoder.state_dict().items()}
    before, after = fit(stage.trainable, batch, steps=25, lr=2e-3)
    assert after < 0.7 * before, (before, after)
    assert all(torch.equal(v, stage.generator.autoencoder.state_dict()[k]) for k, v in frozen.items())


def test_move_shifts_content_by_whole_pixels():
    from avatar_service.training.denoiser import move

    img = torch.zeros(2, 1, 16, 24)
    img[:, 0, 5, 10] = 1.0
    out = move(img, torch.tensor([[2.0, -1.0], [0.0, 0.0]]))
    assert out[0, 0, 4, 12] == pytest.approx(1.0) and out[0].sum() == pytest.approx(1.0)
    torch.testing.assert_close(out[1], img[1])  # no move: the image itself


@pytest.fixture()
def photo_folder(tmp_path) -> pathlib.Path:
    photos = sorted((training_data.DATA / "portraits" / "real").glob("*.jpg"))[:4]
    if not photos:
        pytest.skip(NO_DATA)
    src = tmp_path / "photos"
    src.mkdir()
    for p in photos:
        (src / p.name).symlink_to(p)
    return src


def test_denoiser_batch_mixes_face_photos_with_moved_references(dataset, ae_model, photo_folder, tmp_path):
    """--faces: photo rows are silent, show the neutral lip token (no regression target) and have the
    photo itself as target with a moved copy as reference; --ref-shift moves clip references too."""
    from avatar_service.training.denoiser import DenoiserStage

    tc = TrainConfig(batch_size=8, warmup_steps=0, ema_decay=0, ref_shift=3.0, faces_fraction=0.5)
    stage = DenoiserStage(CPU, tc, tmp_path, str(dataset), str(ae_model), faces=str(photo_folder))
    batch = stage.batch(np.random.default_rng(0))
    photo = ~torch.isfinite(batch["lips"]).all(dim=1)
    n = int(photo.sum())
    assert 0 < n < 8 and photo[-n:].all()  # clip rows first, then photos
    assert torch.equal(batch["windows"][-n:], stage.silence.float().expand(n, -1, -1, -1))
    targets = batch["z0"][-n:]
    assert all(any(torch.equal(t, f) for f in stage.face_z) for t in targets)
    moved = batch["z_ref"][-n:]
    assert not torch.allclose(moved, targets, atol=1e-3)  # never its own exact reference
    cos = F.cosine_similarity(moved.flatten(1)[:, None], stage.face_z.flatten(1)[None], dim=-1)  # (n, photos)
    own = [next(k for k, f in enumerate(stage.face_z) if torch.equal(t, f)) for t in targets]
    assert cos.argmax(dim=1).tolist() == own, cos  # but the same face, a few pixels away
    before, after = fit(stage.trainable, batch, steps=25, lr=2e-3)
    assert after < 0.7 * before, (before, after)


def _log_steps(run: pathlib.Path) -> list[int]:
    rows = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    return [r["step"] for r in rows if "denoiser/loss" in r]


def test_denoiser_resume_continues_from_the_saved_step(dataset, ae_model, tmp_path):
    run = tmp_path / "dn"
    common = ["train", "denoiser", "--data", str(dataset), "--out", str(run), "--init", str(ae_model),
              "--batch-size", "4", "--device", "cpu", "--log-every", "1", "--sample-every", "2", "--shape-aug", "0.15"]
    assert train_main(common + ["--steps", "3"]) == 0
    first = torch.load(run / "checkpoints" / "step_00000003.pt", weights_only=False)
    assert train_main(common + ["--steps", "5", "--resume"]) == 0
    assert _log_steps(run) == [1, 2, 3, 4, 5]  # the second run started at 4, not 1
    last = torch.load(run / "checkpoints" / "step_00000005.pt", weights_only=False)
    adam_steps = {int(s["step"]) for s in last["optimizer"]["state"].values()}
    assert adam_steps == {5}  # optimizer state was restored, not restarted
    assert not torch.equal(first["stage"]["generator"]["denoiser.unet.conv_in.weight"],
                           last["stage"]["generator"]["denoiser.unet.conv_in.weight"])
    # what the run leaves behind: a complete model, sample grids and a val video with sound
    g = FaceGenerator.from_pretrained(run / "model")
    assert torch.equal(g.denoiser.unet.conv_in.weight, last["stage"]["ema"]["denoiser.unet.conv_in.weight"])
    assert (run / "samples" / "denoiser_00000002.png").exists()
    with av.open(str(next((run / "samples").glob("val_*.mp4")))) as c:
        assert {s.type for s in c.streams} == {"video", "audio"}
        assert c.streams.video[0].frames == 35


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_cpu_processes_gloo(dataset, ae_model, tmp_path):
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "avatar_service.training", "train", "denoiser",
           "--data", str(dataset), "--out", str(run), "--init", str(ae_model), "--steps", "3", "--batch-size", "2",
           "--device", "cpu", "--log-every", "1"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env,
                       cwd=pathlib.Path(__file__).resolve().parents[1])
    assert r.returncode == 0, r.stderr[-3000:]
    assert set(re.findall(r"process (\d) of 2", r.stderr)) == {"0", "1"}
    assert _log_steps(run) == [1, 2, 3]
    assert (run / "model" / "model.safetensors").exists()


def test_sync_expert_scores_aligned_above_shifted_after_a_few_steps(dataset, tmp_path):
    from avatar_service.model.sync import sync_mel
    from avatar_service.model.sync import SyncConfig, SyncExpert, lip_windows
    from avatar_service.training.sync import SyncStage, offset_distances

    stage = SyncStage(CPU, TrainConfig(batch_size=16, warmup_steps=0), tmp_path, str(dataset), SyncConfig.tiny())
    cfg, clips = stage.config, stage.index.clips
    b = stage.make_batch(np.random.default_rng(0), 8, stage.index)
    assert b["lips"].shape == (8, cfg.frames, 2 * cfg.lip_points) and torch.isfinite(b["lips"]).all()
    assert b["mel"].shape == b["shifted_mel"].shape == (8, cfg.mel.n_mels, cfg.mel_frames)
    # 16 windows 6 frames apart in one clip; window i's off-sync audio is window i+1's, so every audio
    # window is once a positive and once a negative: only lips *and* audio together tell them apart.
    clip = clips[0]
    starts = np.arange(16) * 6
    lips = lip_windows(clip.lips, starts, cfg.frames)
    aligned = torch.from_numpy(sync_mel(clip.mel, starts, cfg.fps, cfg.mel, cfg.mel_frames))
    shifted = aligned.roll(-1, dims=0)
    before, after = fit(stage.trainable, {"lips": lips, "mel": aligned, "shifted_mel": shifted}, steps=40, lr=2e-3)
    assert after < 0.5 * before, (before, after)
    expert = stage.expert.eval()
    with torch.no_grad():
        c_pos, c_neg = expert(lips, aligned), expert(lips, shifted)
    assert (c_pos > c_neg).float().mean().item() >= 0.8, (c_pos, c_neg)
    # the saved expert is the same function, and clip-level evaluation (LSE-D/C) runs on it
    again = SyncExpert.from_pretrained(expert.save_pretrained(tmp_path / "sync"))
    with torch.no_grad():
        assert torch.equal(again(lips, aligned), c_pos)
    clip = stage.val[0]
    res = offset_distances(again, clip.lips, clip.mel, max_offset=3)
    d = res["distances"]
    assert d.shape == (7,) and res["lse_d"] == d.min()  # LSE-D: the distance at the best offset ...
    assert res["offset"] == -res["offsets"][d.argmin()]  # ... which is the one reported (audio leads: +) ...
    assert res["lse_c"] == pytest.approx(np.median(d) - d.min())  # ... and LSE-C: median minus that minimum
    # and it plugs into the evaluation metrics: one embedding per video frame from crops and raw audio
    from avatar_service.evaluation import metrics

    crops, audio = TalkingDataset(dataset, TINY.layout, cfg.mel).load_media(clip)
    ev, ea = again.per_frame_embedders()
    assert ev(crops).shape == ea(audio).shape == (len(crops), cfg.embed_dim)
    lse = metrics.sync_scores(crops, audio, ev, ea, max_offset=3)
    assert len(lse.distances) == 7 and lse.distance == min(lse.distances)
    assert lse.confidence == pytest.approx(float(np.median(lse.distances)) - lse.distance)
    assert lse.offset_frames == 3 - int(np.argmin(lse.distances))


def test_bench_times_every_stage_on_the_tiny_config():
    from avatar_service.bench.train import main as bench

    import math

    from avatar_service.model.sync import SyncConfig, SyncExpert
    from avatar_service.training.sync import SyncObjective

    out = bench(["--config", "tiny", "--device", "cpu", "--steps", "1", "--batch-size", "2"])
    assert out["config"] == "tiny" and out["device"] == "cpu"
    assert all(math.isfinite(out[s]["s_per_step"]) and out[s]["batch"] == 2 for s in ("autoencoder", "denoiser", "sync"))
    # it timed the tiny modules (a bench of the wrong config would count other parameters)
    sync = SyncObjective(SyncExpert(SyncConfig.tiny()))
    assert out["sync"]["params"] == sum(p.numel() for p in sync.parameters() if p.requires_grad)
