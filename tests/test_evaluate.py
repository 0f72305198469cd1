"""`avatarlab eval` on a small real dataset with the tiny model: the numbers exist for the model and both
baselines, and the baselines sit where they must (ground truth perfect, static mouth uncorrelated)."""
import json
import math
import subprocess
import sys

import pytest

import training_data
from avatar_service.evaluation.evaluate import METHODS, evaluate, markdown
from avatar_service.runtime.models import load_backend

pytestmark = pytest.mark.slow  # the eval command end to end: `pytest -m "not slow"` skips it


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    if not (training_data.DATA / "talking").is_dir():
        pytest.skip(f"real data absent at {training_data.DATA} (set AVATARLAB_DATA to the shared data folder)")
    return training_data.build(tmp_path_factory.mktemp("evalset"))


def test_eval_scores_model_and_baselines(dataset, tmp_path):
    result = evaluate(load_backend("tiny"), dataset, sync_path=None, split="val", steps=2, guidance=1.0,
                      max_seconds=2.0, videos=str(tmp_path / "videos"), log=lambda s: None)
    assert result["clips"] >= 1
    for m in METHODS:
        assert {"lmd", "psnr", "ssim", "identity", "flicker", "mouth_open_r"} <= set(result[m])
    gt, static = result["ground_truth"], result["static"]
    assert gt["lmd"] == 0 and gt["ssim"] == 1 and gt["mouth_open_r"] == 1 and math.isinf(gt["psnr"])
    assert static["lmd"] > 0 and static["mouth_open_r"] < 0.9
    assert 0 < result["model"]["identity"] <= 1
    assert result["model"]["lse_d"] is None and result["model"]["lse_c"] is None  # no expert given: no number
    clip = result["per_clip"][0]["clip"]
    assert (tmp_path / "videos" / f"{clip}.mp4").stat().st_size > 1000
    assert "| model |" in markdown(result, "avatarlab eval ...")


def test_eval_command_writes_json(dataset, tmp_path):
    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "avatar_service.cli", "eval", "--clips", str(dataset), "--json", str(out),
                           "--model", "tiny", "--sync", "none", "--max-seconds", "1", "--limit", "1"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(out.read_text())
    assert set(METHODS) <= set(data) and data["clips"] == 1
