#!/usr/bin/env bash
# Copies the client core header and a built library into the plugin where AvatarLabClientCore.Build.cs
# and the runtime module look for them. Run once per platform you ship, from anywhere:
#   unreal_plugin/stage_client_core.sh Linux   build/client_core/libavatarlab_client.so
#   unreal_plugin/stage_client_core.sh Win64   build/win64/Release/avatarlab_client.dll build/win64/Release/avatarlab_client.lib
#   unreal_plugin/stage_client_core.sh Mac     build/mac/libavatarlab_client.dylib
#   unreal_plugin/stage_client_core.sh Android build/android-arm64/libavatarlab_client.so
#   unreal_plugin/stage_client_core.sh IOS     build/ios/libavatarlab_client_merged.a
# Building the libraries: client_core/README.md, "Building for each platform".
set -euo pipefail

plugin="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$plugin/.." && pwd)"
module="$plugin/Source/ThirdParty/AvatarLabClientCore"
bin="$plugin/Binaries/ThirdParty/AvatarLabClientCore"

if [[ $# -lt 2 ]]; then
  sed -n '2,9p' "$0" >&2
  exit 2
fi
platform="$1"; library="$2"
[[ -f "$library" ]] || { echo "stage_client_core: no such file: $library" >&2; exit 1; }

copy() { mkdir -p "$(dirname "$2")"; cp -f "$1" "$2"; echo "staged $2"; }

copy "$repo/client_core/include/avatarlab/avatarlab.h" "$module/include/avatarlab/avatarlab.h"
case "$platform" in
  Win64)
    [[ $# -ge 3 && -f "$3" ]] || { echo "stage_client_core: Win64 needs the import library (avatarlab_client.lib) as third argument" >&2; exit 1; }
    copy "$library" "$bin/Win64/avatarlab_client.dll"
    copy "$3" "$module/lib/Win64/avatarlab_client.lib" ;;
  Mac)
    copy "$library" "$bin/Mac/libavatarlab_client.dylib"
    # The game binary records the dylib's install name; make it the staged file's name so dyld finds it
    # next to the one the module loaded at start-up.
    if command -v install_name_tool >/dev/null; then
      install_name_tool -id @rpath/libavatarlab_client.dylib "$bin/Mac/libavatarlab_client.dylib"
    else
      echo "stage_client_core: install_name_tool not found; run on macOS so the install name becomes @rpath/libavatarlab_client.dylib" >&2
    fi ;;
  Linux)
    dest="$bin/Linux/x86_64-unknown-linux-gnu"
    copy "$library" "$dest/libavatarlab_client.so"
    # Binaries linked against it ask for its SONAME (libavatarlab_client.so.1), so stage that name as well.
    soname="$(readelf -d "$library" 2>/dev/null | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')"
    if [[ -n "$soname" && "$soname" != "libavatarlab_client.so" ]]; then copy "$library" "$dest/$soname"; fi
    # Dependencies bundled beside it (found through its $ORIGIN rpath; client_core/packaging/).
    for dep in "$(dirname "$library")"/*.so.*; do
      if [[ -f "$dep" && "$(basename "$dep")" != libavatarlab_client.so* ]]; then copy "$dep" "$dest/$(basename "$dep")"; fi
    done ;;
  Android) copy "$library" "$module/lib/Android/arm64-v8a/libavatarlab_client.so" ;;
  IOS)     copy "$library" "$module/lib/IOS/libavatarlab_client.a" ;;
  *) echo "stage_client_core: unknown platform '$platform' (Win64, Mac, Linux, Android, IOS)" >&2; exit 2 ;;
esac
