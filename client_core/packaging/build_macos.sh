#!/usr/bin/env bash
# macOS universal dylib (arm64 + x86_64), staged into both plugins. Not run here (see README.md).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"; repo="$(cd "$here/../.." && pwd)"
for arch in arm64 x64; do
  "$here/vcpkg_build.sh" "$arch-osx" "$repo/build/plugins/macos-$arch" -DCMAKE_OSX_ARCHITECTURES="${arch/x64/x86_64}"
done
out="$repo/build/plugins/macos"; mkdir -p "$out"
lipo -create "$repo"/build/plugins/macos-{arm64,x64}/libavatarlab_client.dylib -output "$out/libavatarlab_client.dylib"
strip -x "$out/libavatarlab_client.dylib"
"$repo/unity_plugin/Tools~/stage_native.sh" macos "$out/libavatarlab_client.dylib"
"$repo/unreal_plugin/stage_client_core.sh" Mac "$out/libavatarlab_client.dylib"
