# Windows x64 DLL (+ import library), staged into both plugins. Not run here (see README.md).
# Run from a "x64 Native Tools" prompt with VCPKG_ROOT set; staging uses Git Bash for the shell scripts.
$ErrorActionPreference = "Stop"
$repo = Resolve-Path "$PSScriptRoot/../.."
$build = "$repo/build/plugins/windows-x64"
& "$env:VCPKG_ROOT/vcpkg" install grpc protobuf libjpeg-turbo --triplet x64-windows-static-md
cmake -S "$repo/client_core" -B $build -DAVL_BUILD_TESTS=OFF `
  -DCMAKE_TOOLCHAIN_FILE="$env:VCPKG_ROOT/scripts/buildsystems/vcpkg.cmake" -DVCPKG_TARGET_TRIPLET=x64-windows-static-md
cmake --build $build --config Release --target avatarlab_client
bash "$repo/unity_plugin/Tools~/stage_native.sh" windows-x86_64 "$build/Release/avatarlab_client.dll"
bash "$repo/unreal_plugin/stage_client_core.sh" Win64 "$build/Release/avatarlab_client.dll" "$build/Release/avatarlab_client.lib"
