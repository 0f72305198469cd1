#!/usr/bin/env bash
# Copies a built native client core into Plugins/<platform>/ and writes its PluginImporter .meta
# (platform and CPU), so Unity loads it. Binaries and their .meta stay out of git (build outputs).
# `make plugins` runs this for Linux (client_core/packaging/build_linux_x86_64.sh).
#   Tools~/stage_native.sh linux-x86_64 [<dir with libavatarlab_client.so>]   (default <repo>/build/client_core;
#                                        bundled dependencies in that dir are staged beside it)
#   Tools~/stage_native.sh windows-x86_64 path/to/avatarlab_client.dll
#   Tools~/stage_native.sh macos path/to/libavatarlab_client.dylib
#   Tools~/stage_native.sh android-arm64 path/to/libavatarlab_client.so
#   Tools~/stage_native.sh ios path/to/libavatarlab_client.a   (plus its static dependencies, same way)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
platform="$1"
src="${2:-$here/../build/client_core/libavatarlab_client.so}"
[ -d "$src" ] && src="$src/libavatarlab_client.so"
case "$platform" in
  linux-x86_64)   dest="Plugins/Linux/x86_64" ;;
  windows-x86_64) dest="Plugins/Windows/x86_64" ;;
  macos)          dest="Plugins/macOS" ;;
  android-arm64)  dest="Plugins/Android/arm64-v8a" ;;
  ios)            dest="Plugins/iOS" ;;
  *) echo "unknown platform '$platform' (linux-x86_64 windows-x86_64 macos android-arm64 ios)" >&2; exit 2 ;;
esac
[ -f "$src" ] || { echo "$src not found: build client_core first (client_core/README.md)" >&2; exit 2; }
mkdir -p "$here/$dest"
files=("$src")
if [ "$platform" = linux-x86_64 ]; then
  # Dependencies bundled beside the library (a build without static dependencies) go along.
  for dep in "$(dirname "$src")"/*.so.*; do [ -f "$dep" ] && files+=("$dep"); done
fi
for f in "${files[@]}"; do
  cp -L "$f" "$here/$dest/"
  python3 "$here/Tools~/unity_meta.py" --plugin "$dest/$(basename "$f")" "$platform"
  echo "staged unity_plugin/$dest/$(basename "$f") (+ .meta)"
done
python3 "$here/Tools~/unity_meta.py"  # .meta for the new folders
