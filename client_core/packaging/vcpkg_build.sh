#!/usr/bin/env bash
# Shared by the vcpkg-based platform scripts (NOT run on the development machine; see README.md):
#   vcpkg_build.sh <triplet> <build-dir> [extra cmake args...]
# Builds a Release client core with every dependency static (vcpkg static triplet).
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
triplet="$1"; build="$2"; shift 2
: "${VCPKG_ROOT:?set VCPKG_ROOT to a vcpkg checkout}"
"$VCPKG_ROOT/vcpkg" install grpc protobuf libjpeg-turbo --triplet "$triplet"
cmake -S "$repo/client_core" -B "$build" -DCMAKE_BUILD_TYPE=Release -DAVL_BUILD_TESTS=OFF \
      -DCMAKE_TOOLCHAIN_FILE="$VCPKG_ROOT/scripts/buildsystems/vcpkg.cmake" -DVCPKG_TARGET_TRIPLET="$triplet" "$@"
cmake --build "$build" --config Release --target avatarlab_client
