#!/usr/bin/env bash
# Compiles the plain-C# core of the Unity package (Runtime/Core, no UnityEngine) and its NUnit
# tests with Mono's mcs, then runs them with nunit-console against the REAL native library and a
# LIVE service that the tests start themselves. Exits non-zero on any failure.
#   AVATARLAB_NATIVE_DIR  folder with libavatarlab_client.so (default: the package's own
#                         Plugins/Linux/x86_64, where `make plugins` stages it)
#   AVATARLAB_BIN         avatarlab executable (default <repo>/.venv/bin/avatarlab; tests skip
#                         without it unless AVL_REQUIRE_LIVE=1)
# Debian packages: mono-complete nunit-console. Extra arguments go to nunit-console
# (e.g. -run=AvatarLab.Tests.PipelineUnitTests).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
native="${AVATARLAB_NATIVE_DIR:-$here/Plugins/Linux/x86_64}"
export AVATARLAB_BIN="${AVATARLAB_BIN:-$repo/.venv/bin/avatarlab}"
export AVATARLAB_REPO_ROOT="$repo"
nunit_dir="${NUNIT_DIR:-$(dirname "$(ls /usr/lib/cli/nunit.framework-*/nunit.framework.dll | head -1)")}"

if ! ls "$native"/libavatarlab_client.so >/dev/null 2>&1; then
  echo "libavatarlab_client.so not found in $native: build and stage it with \`make plugins\` (or set AVATARLAB_NATIVE_DIR)" >&2
  exit 2
fi
out="$(mktemp -d /tmp/avatarlab-unity-tests.XXXXXX)"
trap 'rm -rf "$out"' EXIT

# The core must build without UnityEngine: that is what keeps it testable here.
if grep -rnE "using UnityEngine|UnityEngine\\." "$here/Runtime/Core" >/dev/null; then
  echo "Runtime/Core must not reference UnityEngine:" >&2
  grep -rnE "using UnityEngine|UnityEngine\\." "$here/Runtime/Core" >&2
  exit 1
fi
# A git-URL package is immutable: Unity ignores any asset without a .meta file.
python3 "$here/Tools~/unity_meta.py" --check
# The sample's scene, prefab and material as Unity would read them (references, scripts' fields, shader).
py="${AVATARLAB_PYTHON:-$repo/.venv/bin/python}"
[ -x "$py" ] || py=python3
"$py" "$here/Tools~/check_unity_assets.py" --selftest
"$py" "$here/Tools~/check_unity_assets.py"
mcs -nologo -warnaserror -target:library -out:"$out/AvatarLab.Core.dll" "$here"/Runtime/Core/*.cs
mcs -nologo -target:library -define:AVL_NUNIT2 -out:"$out/AvatarLab.Tests.dll" \
    -r:"$out/AvatarLab.Core.dll" -r:"$nunit_dir/nunit.framework.dll" -r:System.Core "$here"/Tests/Core/*.cs
cp "$nunit_dir/nunit.framework.dll" "$out/"

# Compile check of the Unity-facing scripts against a STUB of the UnityEngine API
# (Tests/UnityStub~, a hand-written subset; Unity itself is not installed here).
if [ -d "$here/Tests/UnityStub~" ]; then
  mcs -nologo -target:library -out:"$out/UnityEngine.dll" "$here/Tests/UnityStub~"/*.cs
  mcs -nologo -warnaserror -target:library -define:UNITY_5_3_OR_NEWER -define:UNITY_2021_3_OR_NEWER \
      -out:"$out/AvatarLab.Runtime.dll" -r:"$out/UnityEngine.dll" \
      "$here"/Runtime/Core/*.cs "$here"/Runtime/Unity/*.cs "$here"/Samples~/*/*.cs
  mcs -nologo -warnaserror -target:library -define:UNITY_5_3_OR_NEWER -out:"$out/AvatarLab.Editor.dll" \
      -r:"$out/UnityEngine.dll" -r:"$out/AvatarLab.Runtime.dll" "$here"/Editor/*.cs
  echo "Runtime/Unity, Editor and the sample compile against the UnityEngine/UnityEditor STUB"
fi

cd "$out"
# The staged folder with the library removed (as in a project that never ran `make plugins`): the
# first call must say what is missing and how to get it.
mkdir "$out/no-native" && cp "$native"/* "$out/no-native/" 2>/dev/null || true
rm -f "$out/no-native"/libavatarlab_client.so*
LD_LIBRARY_PATH="$out/no-native" AVL_EXPECT_NO_NATIVE=1 nunit-console -nologo -labels -noshadow -run=AvatarLab.Tests.MissingNativeLibraryTests \
  -xml="$out/missing.xml" "$out/AvatarLab.Tests.dll"
# Then everything against the staged library.
LD_LIBRARY_PATH="$native${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
  nunit-console -nologo -labels -noshadow -xml="$out/results.xml" "$out/AvatarLab.Tests.dll" "$@"
