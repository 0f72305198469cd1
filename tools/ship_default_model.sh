#!/usr/bin/env bash
# How the embedded default model (avatar_service/assets/model/) was made, end to end, on the 2-core CPU
# machine. DATA is the shared data folder; RUNS holds everything that is not committed.
# Usage: tools/ship_default_model.sh [DATA] [RUNS]
set -euo pipefail
DATA=${1:-../shared/data}
RUNS=${2:-runs/default}
A=.venv/bin/avatarlab
OUT=avatar_service/assets/model
# One torch thread with passive OpenMP waiting was 5-10x faster than spinning threads on a busy 2-core machine.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OMP_WAIT_POLICY=PASSIVE

$A prepare "$DATA/talking" --out "$RUNS/data" --crop-px 128 --workers 2
$A train autoencoder --data "$RUNS/data" --out "$RUNS/ae" --steps 1000 --batch-size 16 --lr 5e-4 --warmup-steps 30 --faces auto
$A train denoiser --data "$RUNS/data" --init "$RUNS/ae/model" --out "$RUNS/dn" --steps 3500 --batch-size 32 --lr 3e-4 --warmup-steps 100
# The sync expert (`$A train sync ...`) stayed at chance in 1000 CPU steps, so it is not shipped and eval
# reports LSE as null; the mouth-opening correlation is the lip-sync measure instead.

# Ship: fp16 weights (fp32 compute) and ONNX graphs.
.venv/bin/python - "$RUNS" "$OUT" <<'PY'
import pathlib, sys, torch
from avatar_service.model import FaceGenerator
runs, out = map(pathlib.Path, sys.argv[1:])
FaceGenerator.from_pretrained(runs / "dn" / "model").save_pretrained(out, dtype=torch.float16)
PY
$A export --model "$OUT" --out "$OUT/onnx" --fp16-weights
$A eval --clips "$RUNS/data" --model "$OUT" --sync none --json docs/eval/default.json --report docs/evaluation.md \
   --videos "$RUNS/eval_videos" --steps-grid docs/images/steps.png --max-seconds 6
