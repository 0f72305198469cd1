#!/usr/bin/env bash
# iOS arm64: one static archive with every dependency merged in (iOS apps link it; Unity uses
# "__Internal"), staged into both plugins. Not run here (see README.md).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"; repo="$(cd "$here/../.." && pwd)"
build="$repo/build/plugins/ios-arm64"
"$here/vcpkg_build.sh" arm64-ios "$build" -DCMAKE_SYSTEM_NAME=iOS -DAVL_SHARED=OFF
deps=("$VCPKG_ROOT"/installed/arm64-ios/lib/*.a)
libtool -static -o "$build/libavatarlab_client_merged.a" "$build/libavatarlab_client.a" "$build/libavatarlab_core.a" "${deps[@]}"
"$repo/unity_plugin/Tools~/stage_native.sh" ios "$build/libavatarlab_client_merged.a"
"$repo/unreal_plugin/stage_client_core.sh" IOS "$build/libavatarlab_client_merged.a"
