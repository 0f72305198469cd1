"""`avatarlab prepare` on real talking clips, plus the failure cases (corrupt file, faceless video)."""
from __future__ import annotations

import dataclasses
import json
import os
from fractions import Fraction

import av
import numpy as np
import pytest

from avatar_service.data import cli
from avatar_service.media.clips import iter_frames, load_audio, probe
from avatar_service.data.prepare import _smooth_runs, group_people, split_identities
from avatar_service.face.align import FaceLayout
from avatar_service.model.features import MelConfig

pytestmark = pytest.mark.slow  # real videos through mediapipe: `pytest -m "not slow"` skips it

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get("AVATARLAB_DATA", os.path.join(REPO, "..", "shared", "data"))
TALKING = os.path.join(DATA, "talking")
needs_data = pytest.mark.skipif(not os.path.isdir(TALKING),
                                reason=f"real talking clips not found at {TALKING} (set AVATARLAB_DATA)")

# 25 fps with audio; 29.97 fps; video without audio + sidecar .wav
REAL = ["vox13_00015.mp4", "id08_RD_Radio10_0_clip_0.mp4", "pair01_mouth_source.mp4"]
REAL_IDS = {"vox13", "id08", "pair01"}


def write_video(path: str, frames: np.ndarray, fps: int | Fraction, audio: np.ndarray | None = None) -> None:
    """mpeg4 video (+ 16 kHz mono aac) with PyAV."""
    with av.open(path, "w") as c:
        v = c.add_stream("mpeg4", rate=fps)
        v.width, v.height, v.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        v.bit_rate = 4_000_000
        a = None
        if audio is not None:
            a = c.add_stream("aac", rate=16000)
            a.layout = "mono"
        for f in frames:
            c.mux(v.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        c.mux(v.encode())
        if a is not None:
            for i in range(0, len(audio), 1024):
                af = av.AudioFrame.from_ndarray(audio[None, i:i + 1024].astype(np.float32), format="fltp", layout="mono")
                af.sample_rate, af.pts = 16000, i
                c.mux(a.encode(af))
            c.mux(a.encode())


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    if not os.path.isdir(TALKING):
        pytest.skip(f"real talking clips not found at {TALKING} (set AVATARLAB_DATA)")
    tmp = tmp_path_factory.mktemp("prep")
    bad = tmp / "bad"
    bad.mkdir()
    (bad / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000))
    rng = np.random.default_rng(0)
    t = np.arange(3 * 16000) / 16000
    write_video(str(bad / "noise.mp4"), rng.integers(0, 256, (75, 96, 128, 3), dtype=np.uint8), 25,
                (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32))
    out = tmp / "ds"
    sources = [os.path.join(TALKING, f) for f in REAL] + [str(bad)]
    rc = cli.main(["prepare", *sources, "--out", str(out), "--max-seconds-per-clip", "2", "--workers", "2"])
    with open(out / "manifest.json") as f:
        return rc, out, json.load(f)


@needs_data
def test_manifest_fields_and_split(prepared):
    rc, _, m = prepared
    assert rc == 0
    assert m["version"] == 1 and m["fps"] == 25
    assert m["layout"] == json.loads(json.dumps(dataclasses.asdict(FaceLayout(128))))
    assert m["mel"] == dataclasses.asdict(MelConfig())
    assert {c["identity"] for c in m["clips"]} == REAL_IDS  # labels from talking/manifest.tsv
    assert all(c["person"] == c["identity"] for c in m["clips"])  # three different people
    split = {c["identity"]: c["split"] for c in m["clips"]}
    assert sorted(split.values()).count("val") >= 2 and "train" in split.values()
    for c in m["clips"]:
        assert c["path"] == f"clips/{c['id']}.npz" and os.path.isabs(c["source"])
        assert abs(c["frames"] - c["seconds"] * 25) <= 1


@needs_data
def test_bad_files_skipped_and_reported(prepared):
    _, out, m = prepared
    reasons = {os.path.basename(s["source"]): s["reason"] for s in m["skipped"]}
    assert set(reasons) == {"corrupt.mp4", "noise.mp4"}
    assert "unreadable" in reasons["corrupt.mp4"]
    assert "no face" in reasons["noise.mp4"]
    assert sorted(os.listdir(out / "clips")) == sorted(f"{c['id']}.npz" for c in m["clips"])  # no tmp left


@needs_data
def test_clip_arrays(prepared):
    _, out, m = prepared
    layout = FaceLayout(128)
    x0, y0, x1, y1 = layout.mask_box
    for c in m["clips"]:
        z = np.load(out / c["path"])
        t = c["frames"]
        assert 45 <= t <= 50  # 2 s cap; id08 is 2.07 s long
        assert z["crops"].shape == (t, 128, 128, 3) and z["crops"].dtype == np.uint8
        assert z["audio"].shape == (t * 640,) and z["audio"].dtype == np.float32
        assert np.abs(z["audio"]).max() > 0.01  # real speech, including pair01's sidecar wav
        assert z["mel"].shape == (t * 4, 40) and z["mel"].dtype == np.float32
        assert z["lips"].shape == (t, 40, 2) and z["matrices"].shape == (t, 2, 3)
        assert z["valid"].dtype == bool and z["valid"].mean() > 0.9
        assert z["face_embedding"].shape == (128,) and abs(np.linalg.norm(z["face_embedding"]) - 1) < 1e-4
        mo = z["mouth_open"]
        assert np.isfinite(mo).mean() > 0.8, c["id"]
        assert 0.0 <= np.nanmin(mo) and np.nanmax(mo) < 1.0 and np.nanstd(mo) > 0.01  # the mouth moves
        # Alignment: the lips sit inside the region the generator redraws.
        centre = np.nanmean(z["lips"], axis=(0, 1)) / 128
        assert x0 < centre[0] < x1 and y0 < centre[1] < y1, (c["id"], centre)
        assert z["crops"][z["valid"]].std() > 20  # an image, not a blank


def test_resample_30_to_25_fps_picks_the_frame_on_screen(tmp_path):
    """Frame i of a 30 fps video has brightness 8*i; output frame k must show source frame floor(k*30/25)."""
    n = 30
    frames = np.repeat((np.arange(n) * 8).astype(np.uint8)[:, None, None, None], 64 * 64 * 3).reshape(n, 64, 64, 3)
    path = str(tmp_path / "ramp.mp4")
    write_video(path, frames, 30, np.zeros(16000, np.float32))
    out = [f.mean() for f in iter_frames(probe(path), 25)]
    assert len(out) == 25  # 1 s at 30 fps -> 25 frames
    picked = np.round(np.array(out) / 8).astype(int)
    np.testing.assert_array_equal(picked, np.floor(np.arange(25) * 30 / 25).astype(int))


def test_sidecar_wav_used_when_video_has_no_audio(tmp_path):
    import soundfile as sf

    path = str(tmp_path / "mute.mp4")
    write_video(path, np.zeros((25, 64, 64, 3), np.uint8), 25)
    sr = 44100
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(sr) / sr)).astype(np.float32)
    sf.write(str(tmp_path / "mute.wav"), tone, sr)
    info = probe(path)
    assert info.audio_path.endswith("mute.wav")
    audio = load_audio(info)
    assert abs(len(audio) - 16000) <= 2  # resampled to 16 kHz
    spec = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spec) * 16000 / len(audio) - 440) < 3


def test_no_audio_anywhere_is_a_clear_error(tmp_path):
    path = str(tmp_path / "silent.mp4")
    write_video(path, np.zeros((10, 64, 64, 3), np.uint8), 25)
    with pytest.raises(ValueError, match="no audio track and no silent.wav"):
        probe(path)


def test_split_is_by_identity_stable_and_has_two_val():
    ids = [f"id{i:02d}" for i in range(40)]
    a = split_identities(ids, 0.15)
    assert a == split_identities(list(reversed(ids)) + ids[:5], 0.15)  # order and repeats do not matter
    assert sum(v == "val" for v in a.values()) >= 2
    # A hash threshold, not a ranking: adding people does not move anyone between splits.
    b = split_identities(ids + [f"new{i}" for i in range(10)], 0.15)
    assert {i: b[i] for i in ids} == a
    small = split_identities(["a", "b", "c"], 0.0)
    assert sorted(small.values()) == ["train", "val", "val"]
    assert split_identities(["solo"], 0.5) == {"solo": "train"}


def test_smoothing_does_not_cross_a_gap():
    mats = np.zeros((20, 2, 3), np.float32)
    mats[:, 0, 0] = mats[:, 1, 1] = 1
    mats[10:, 0, 2] = 100.0  # the face jumps after a cut
    valid = np.ones(20, bool)
    valid[9:11] = False
    out = _smooth_runs(mats, valid, 2.0)
    assert np.allclose(out[:9, 0, 2], 0) and np.allclose(out[11:, 0, 2], 100)
    assert out[9, 0, 2] == 0 and out[10, 0, 2] == 100  # gaps take the nearest valid transform


def test_repeated_person_under_two_labels_lands_in_one_split():
    rng = np.random.default_rng(5)
    e = rng.normal(size=(5, 128))
    e[3] = e[1] + 0.2 * rng.normal(size=128)  # "grid37" is "grid33" again
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    labels = ["grid30", "grid33", "id01", "grid37", "vox14"]
    person = group_people(labels, e, 0.55)
    assert person["grid37"] == person["grid33"] == "grid33"
    assert len(set(person.values())) == 4
    assert group_people(labels, e, None)["grid37"] == "grid37"
