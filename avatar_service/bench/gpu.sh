#!/usr/bin/env bash
# GPU benchmark in under 10 minutes, installing nothing: serving throughput (torch bf16 and fp32; onnxruntime
# CUDA where onnxruntime-gpu is installed) at 256x256 for 1..64 concurrent streams, and training step times.
# Usage: avatar_service/bench/gpu.sh [OUT_DIR]   (run from the repo root with the project's venv, or PY=python3)
set -uo pipefail
OUT=${1:-out/gpu}
PY=${PY:-.venv/bin/python}
mkdir -p "$OUT"
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
run() { echo "== $*" | tee -a "$OUT/summary.txt"; timeout 240 "$@" 2>&1 | tee -a "$OUT/summary.txt"; }
run $PY -m avatar_service.cli bench --device cuda --dtype bfloat16 --backends torch --sizes 256 --steps 4 \
    --streams 1,8,32,64 --seconds 4 --json "$OUT/bench_torch_bf16.json"
run $PY -m avatar_service.cli bench --device cuda --backends onnx --sizes 256 --steps 4 --streams 1,16,64 \
    --seconds 4 --json "$OUT/bench_onnx.json"
run $PY -m avatar_service.cli bench train --device cuda --bf16 --steps 20
echo "results in $OUT"
