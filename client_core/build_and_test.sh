#!/usr/bin/env bash
# Configures, builds (2 jobs) and tests the native client core. Build tree: build/client_core at
# the repository root. The live tests start `avatarlab serve --model tiny` themselves; they use
# $AVATARLAB_BIN, else <repo>/.venv/bin/avatarlab, and skip with a reason if neither exists.
# Extra arguments go to ctest (e.g. -R core).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
build="$repo/build/client_core"
jobs="${AVL_BUILD_JOBS:-2}"

cmake -S "$repo/client_core" -B "$build" -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-RelWithDebInfo}"
cmake --build "$build" -j "$jobs"
ctest --test-dir "$build" --output-on-failure -V "$@"
