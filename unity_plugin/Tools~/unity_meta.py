#!/usr/bin/env python3
"""Writes the .meta files Unity needs for a package installed by git URL.

A git (or tarball) package is immutable, so Unity ignores any asset that has no .meta file
("has no meta file, but it's in an immutable folder. The asset will be ignored"): scripts would
silently not compile. GUIDs are derived from the package name and the file's path, so running this
again gives the same GUIDs and references stay stable.

  python3 "Tools~/unity_meta.py"          # write missing .meta files
  python3 "Tools~/unity_meta.py" --check  # exit 1 if any asset lacks one (run_tests.sh does this)
  python3 "Tools~/unity_meta.py" --plugin Plugins/Linux/x86_64/libavatarlab_client.so linux-x86_64
"""
import argparse
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = json.loads((ROOT / "package.json").read_text())["name"]

# Platform settings of a native plugin's PluginImporter, per folder of Plugins/.
PLATFORMS = {
    "windows-x86_64": ("Windows", "x86_64", [("Standalone", "Win64", {"CPU": "x86_64"})]),
    "macos": ("OSX", "AnyCPU", [("Standalone", "OSXUniversal", {"CPU": "AnyCPU"})]),
    "linux-x86_64": ("Linux", "x86_64", [("Standalone", "Linux64", {"CPU": "x86_64"})]),
    "android-arm64": (None, None, [("Android", "Android", {"CPU": "ARM64"})]),
    "ios": (None, None, [("iPhone", "iOS", {"AddToEmbeddedBinaries": "false", "CPU": "AnyCPU"})]),
}


def guid(rel: str) -> str:
    return hashlib.md5(f"{PACKAGE}/{rel}".encode()).hexdigest()


def ignored(path: Path) -> bool:
    # Unity skips names ending in "~" or starting with "." and never imports .meta files. Samples~ is
    # the exception: Package Manager > Samples copies a sample with its .meta files, so the GUIDs its
    # scene and prefab refer to (scripts, materials, the prefab) must be there and stable.
    parts = path.relative_to(ROOT).parts
    if parts and parts[0] == "Samples~":
        parts = parts[1:]
        if not parts:
            return True
    return any(p.endswith("~") or p.startswith(".") for p in parts) or path.suffix == ".meta"


def importer(path: Path) -> str:
    if path.is_dir():
        return "folderAsset: yes\nDefaultImporter:\n  externalObjects: {}\n"
    suffix = path.suffix.lower()
    if suffix == ".cs":
        return ("MonoImporter:\n  externalObjects: {}\n  serializedVersion: 2\n  defaultReferences: []\n"
                "  executionOrder: 0\n  icon: {instanceID: 0}\n")
    if suffix == ".shader":
        return ("ShaderImporter:\n  externalObjects: {}\n  defaultTextures: []\n  nonModifiableTextures: []\n"
                "  preprocessorOverride: 0\n")
    if suffix == ".asmdef":
        return "AssemblyDefinitionImporter:\n  externalObjects: {}\n"
    if path.name == "package.json":
        return "PackageManifestImporter:\n  externalObjects: {}\n"
    if suffix == ".prefab":
        return "PrefabImporter:\n  externalObjects: {}\n"
    if suffix == ".mat":
        return "NativeFormatImporter:\n  externalObjects: {}\n  mainObjectFileID: 2100000\n"
    if suffix in (".md", ".txt", ".json", ".xml"):
        return "TextScriptImporter:\n  externalObjects: {}\n"
    return "DefaultImporter:\n  externalObjects: {}\n"


def meta_text(rel: str, body: str) -> str:
    return (f"fileFormatVersion: 2\nguid: {guid(rel)}\n{body}"
            "  userData: \n  assetBundleName: \n  assetBundleVariant: \n")


def plugin_meta(rel: str, platform: str) -> str:
    editor_os, editor_cpu, targets = PLATFORMS[platform]
    lines = ["PluginImporter:", "  externalObjects: {}", "  serializedVersion: 2", "  iconMap: {}",
             "  executionOrder: {}", "  defineConstraints: []", "  isPreloaded: 0", "  isOverridable: 0",
             "  isExplicitlyReferenced: 0", "  validateReferences: 1", "  platformData:",
             "  - first:", "      : Any", "    second:", "      enabled: 0", "      settings: {}",
             "  - first:", "      Editor: Editor", "    second:", f"      enabled: {1 if editor_os else 0}"]
    if editor_os:
        lines += ["      settings:", f"        CPU: {editor_cpu}", "        DefaultValueInitialized: true",
                  f"        OS: {editor_os}"]
    else:
        lines += ["      settings:", "        DefaultValueInitialized: true"]
    for group, target, settings in targets:
        lines += ["  - first:", f"      {group}: {target}", "    second:", "      enabled: 1", "      settings:"]
        lines += [f"        {k}: {v}" for k, v in settings.items()]
    return meta_text(rel, "\n".join(lines) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--plugin", nargs=2, metavar=("PATH", "PLATFORM"))
    args = ap.parse_args()
    if args.plugin:
        path = ROOT / args.plugin[0]
        rel = str(path.relative_to(ROOT))
        Path(str(path) + ".meta").write_text(plugin_meta(rel, args.plugin[1]))
        return 0
    missing = []
    for path in sorted(ROOT.rglob("*")):
        if ignored(path):
            continue
        meta = Path(str(path) + ".meta")
        if meta.exists():
            continue
        rel = str(path.relative_to(ROOT))
        if args.check:
            missing.append(rel)
        else:
            meta.write_text(meta_text(rel, importer(path)))
    if missing:
        print("assets without .meta (Unity ignores them in a git package); run Tools~/unity_meta.py:\n  "
              + "\n  ".join(missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
