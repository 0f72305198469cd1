#!/usr/bin/env bash
# Android arm64-v8a shared library, staged into both plugins. Not run here (see README.md).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"; repo="$(cd "$here/../.." && pwd)"
: "${ANDROID_NDK_HOME:?set ANDROID_NDK_HOME to an NDK r25+}"
build="$repo/build/plugins/android-arm64"
"$here/vcpkg_build.sh" arm64-android "$build" \
  -DVCPKG_CHAINLOAD_TOOLCHAIN_FILE="$ANDROID_NDK_HOME/build/cmake/android.toolchain.cmake" \
  -DANDROID_ABI=arm64-v8a -DANDROID_PLATFORM=android-24
"$ANDROID_NDK_HOME"/toolchains/llvm/prebuilt/*/bin/llvm-strip --strip-unneeded "$build/libavatarlab_client.so"
"$repo/unity_plugin/Tools~/stage_native.sh" android-arm64 "$build/libavatarlab_client.so"
"$repo/unreal_plugin/stage_client_core.sh" Android "$build/libavatarlab_client.so"
