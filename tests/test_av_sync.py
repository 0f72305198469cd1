"""Audio/video offsets of prepared clips (data/av_sync.py): the bundled sync expert finds an offset put into a
real clip, leaves in-sync clips alone, and training and evaluation pair rows with audio by it."""
from __future__ import annotations

import json
import pathlib
import shutil

import numpy as np
import pytest

import training_data
from avatar_service.data.av_sync import AVSyncConfig, apply_offset, measure, shift, unmeasured_note
from avatar_service.runtime.models import EMBEDDED_MODEL

SPF = 640  # 16 kHz samples per 25 fps frame


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    if not (training_data.DATA / "talking").is_dir():
        pytest.skip(f"real data absent at {training_data.DATA} (set AVATARLAB_DATA to the shared data folder)")
    root = training_data.build(tmp_path_factory.mktemp("avsync"))
    # a copy of the first clip whose audio comes 3 frames late: video frame t shows audio frame t + 3
    manifest = json.loads((root / "manifest.json").read_text())
    src = manifest["clips"][0]
    with np.load(root / src["path"]) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["audio"] = np.concatenate([np.zeros(3 * SPF, np.float32), arrays["audio"][: -3 * SPF]])
    np.savez(root / "clips" / "late_audio.npz", **arrays)
    manifest["clips"].append(dict(src, id="late_audio", path="clips/late_audio.npz"))  # same person: not a null pair
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return root


def test_offset_is_found_and_written(dataset):
    assert "sync-offsets" in unmeasured_note(json.loads((dataset / "manifest.json").read_text()))
    found = measure(dataset, EMBEDDED_MODEL / "sync", AVSyncConfig(null_pairs=3))
    late = found["late_audio"]
    assert late["offset_frames"] == -3 and late["applied"] == -3, late
    assert late["p_chance"] < 0.05
    for cid, r in found.items():
        if cid != "late_audio":
            assert abs(r["offset_frames"]) <= 1 and r["applied"] in (0, r["offset_frames"]), (cid, r)
    manifest = json.loads((dataset / "manifest.json").read_text())
    entry = next(c for c in manifest["clips"] if c["id"] == "late_audio")
    assert entry["av_offset_frames"] == -3 and entry["av_sync"]["offset_frames"] == -3
    assert unmeasured_note(manifest) is None


def test_applied_offset_pairs_video_and_audio_again(dataset, tmp_path):
    """The late clip, cut by its offset, reads as in sync."""
    with np.load(dataset / "clips" / "late_audio.npz") as z:
        arrays = {k: z[k] for k in z.files}
    crops, audio = apply_offset(arrays["crops"], arrays["audio"], -3, SPF)
    assert len(crops) == len(arrays["crops"]) - 3 and len(audio) == len(arrays["audio"]) - 3 * SPF
    root = tmp_path / "fixed"
    shutil.copytree(dataset, root)
    n = len(crops)
    fixed = dict(arrays, crops=crops, audio=audio, lips=arrays["lips"][: n], valid=arrays["valid"][: n])
    np.savez(root / "clips" / "late_audio.npz", **fixed)
    assert measure(root, EMBEDDED_MODEL / "sync", write=False)["late_audio"]["offset_frames"] == 0


def test_shift_moves_rows_earlier():
    y = np.arange(6, dtype=np.float32)[:, None]
    assert np.array_equal(shift(y, 2)[:4, 0], [2, 3, 4, 5]) and np.isnan(shift(y, 2)[4:]).all()
    assert np.array_equal(shift(y, -1)[1:, 0], [0, 1, 2, 3, 4]) and np.isnan(shift(y, -1)[0]).all()
    assert np.array_equal(shift(y, 0), y)
