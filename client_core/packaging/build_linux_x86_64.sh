#!/usr/bin/env bash
# Builds the shipping client core for Linux x86_64 and stages it into both engine plugins
# (what `make plugins` runs). Release, stripped, self-contained: gRPC, OpenSSL, c-ares, upb, zlib
# and libstdc++ are linked in statically (-DAVL_STATIC_DEPS=ON). Debian's archives of protobuf,
# libjpeg-turbo, re2 and abseil cannot go into a shared object (local-exec TLS relocations), so
# those ship as shared libraries beside it, found through its $ORIGIN rpath (they need the
# system's libstdc++.so.6 from GCC 12 or newer). AVL_STATIC_DEPS=OFF bundles every dependency
# that way. With vcpkg's static triplets (packaging/ for other platforms) everything is static.
#   client_core/packaging/build_linux_x86_64.sh            build + stage
#   AVL_BUILD_JOBS=8 client_core/packaging/build_linux_x86_64.sh
# Output: build/plugins/linux-x86_64/libavatarlab_client.so, staged as (the one folder convention,
# client_core/README.md "Where the binaries go"):
#   unity_plugin/Plugins/Linux/x86_64/libavatarlab_client.so (+ .meta)
#   unreal_plugin/Binaries/ThirdParty/AvatarLabClientCore/Linux/x86_64-unknown-linux-gnu/
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
build="$repo/build/plugins/linux-x86_64"
static="${AVL_STATIC_DEPS:-ON}"
mkdir -p "$build"
cmake -S "$repo/client_core" -B "$build" -DCMAKE_BUILD_TYPE=Release -DAVL_BUILD_TESTS=OFF \
      -DAVL_STATIC_DEPS="$static" >"$build/configure.log" 2>&1 \
  || { cat "$build/configure.log" >&2; exit 1; }
cmake --build "$build" -j "${AVL_BUILD_JOBS:-2}" --target avatarlab_client
lib="$build/libavatarlab_client.so"
out="$build/stage"
rm -rf "$out" && mkdir -p "$out"
# One real file named as the engines load it; SONAME is libavatarlab_client.so.1, so a game that
# links it (Unreal on Linux) finds it under that name too.
cp -L "$lib" "$out/libavatarlab_client.so"
strip --strip-unneeded "$out/libavatarlab_client.so"
# Bundle every dependency that is not part of the system's C/C++ runtime beside it; the library's
# $ORIGIN rpath makes the loader look there first. With static dependencies that is only what
# AVL_SHARED_DEPS keeps shared (re2); without, it is gRPC, protobuf, abseil and the rest.
ldd "$out/libavatarlab_client.so" | awk '/=> \//{print $3}' \
  | grep -vE '/(libc|libm|libdl|libpthread|librt|libstdc\+\+|libgcc_s|ld-linux[^/]*)\.so' \
  | while read -r dep; do cp -L "$dep" "$out/"; strip --strip-unneeded "$out/$(basename "$dep")"; done
if [ "$static" != "ON" ]; then
  command -v patchelf >/dev/null || { echo "AVL_STATIC_DEPS=OFF needs patchelf (apt-get install patchelf)" >&2; exit 1; }
  for f in "$out"/*.so*; do patchelf --set-rpath '$ORIGIN' "$f"; done
fi
python3 "$repo/client_core/packaging/check_linux_library.py" "$out/libavatarlab_client.so"
"$repo/unity_plugin/Tools~/stage_native.sh" linux-x86_64 "$out"
"$repo/unreal_plugin/stage_client_core.sh" Linux "$out/libavatarlab_client.so"
