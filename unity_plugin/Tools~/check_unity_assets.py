#!/usr/bin/env python3
"""Checks the package's serialized Unity assets (.unity, .prefab, .mat), which no Unity checks here.

What an editor would tell us on import, this tells us before: a file that is not Unity YAML, a document
whose class id and type disagree, a reference to an object that is not in the file, a GUID that no .meta
of the package (or Unity's built-in resources) has, a script reference to a file that is not a C# script
of that class, a serialized field the script does not have, a GameObject whose component list and its
components disagree, a [RequireComponent] left out, a prefab instance pointing at objects its prefab does
not have, and a face material whose shader is not the package shader FaceMaterialChoice falls back to.

  python3 "Tools~/check_unity_assets.py"            # exit 1 and list the problems
  python3 "Tools~/check_unity_assets.py" --selftest # the checker finds planted faults (run_tests.sh runs both)
Needs PyYAML (the repository's .venv has it).
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
ASSET_SUFFIXES = (".unity", ".prefab", ".mat")
BUILTIN_GUIDS = {"0000000000000000e000000000000000", "0000000000000000f000000000000000"}
CLASS_IDS = {1: "GameObject", 4: "Transform", 20: "Camera", 21: "Material", 23: "MeshRenderer",
             29: "OcclusionCullingSettings", 33: "MeshFilter", 81: "AudioListener", 82: "AudioSource",
             104: "RenderSettings", 114: "MonoBehaviour", 157: "LightmapSettings", 196: "NavMeshSettings",
             1001: "PrefabInstance"}
# Keys every MonoBehaviour document has; the rest are the script's serialized fields.
MONO_KEYS = {"m_ObjectHideFlags", "m_CorrespondingSourceObject", "m_PrefabInstance", "m_PrefabAsset",
             "m_GameObject", "m_Enabled", "m_EditorHideFlags", "m_Script", "m_Name", "m_EditorClassIdentifier"}
HEADER = "%YAML 1.1\n%TAG !u! tag:unity3d.com,2011:\n"
DOC = re.compile(r"^--- !u!(\d+) &(-?\d+)( stripped)?$", re.M)


class UnityLoader(yaml.SafeLoader):
    """Unity's tags (!u!1 ...) only name the class, which the document header already gives."""


UnityLoader.add_multi_constructor("tag:unity3d.com,2011:", lambda loader, suffix, node: loader.construct_mapping(node))


def package_guids(root: Path) -> dict[str, Path]:
    guids = {}
    for meta in root.rglob("*.meta"):
        m = re.search(r"^guid: ([0-9a-f]{32})$", meta.read_text(), re.M)
        if m:
            guids[m.group(1)] = meta.with_suffix("")
    return guids


def references(node, path=""):
    """Every {fileID: ...} mapping in a document, with where it sits."""
    if isinstance(node, dict):
        if "fileID" in node and set(node) <= {"fileID", "guid", "type"}:
            yield path, node
            return
        for key, value in node.items():
            yield from references(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from references(value, f"{path}[{i}]")


def parse(text: str, name: str, problems: list[str]) -> dict[int, tuple[int, str, dict]]:
    """fileID -> (class id, type name, body) of a Unity YAML file."""
    if not text.startswith(HEADER):
        problems.append(f"{name}: does not start with the Unity YAML header")
        return {}
    heads = list(DOC.finditer(text))
    docs: dict[int, tuple[int, str, dict]] = {}
    for i, head in enumerate(heads):
        body_text = text[head.end():heads[i + 1].start() if i + 1 < len(heads) else len(text)]
        class_id, file_id = int(head.group(1)), int(head.group(2))
        try:
            body = yaml.load(body_text, Loader=UnityLoader)
        except yaml.YAMLError as e:
            problems.append(f"{name}: &{file_id} is not valid YAML: {e}")
            continue
        if not isinstance(body, dict) or len(body) != 1:
            problems.append(f"{name}: &{file_id} must be one mapping named after its class")
            continue
        (type_name, fields), = body.items()
        expected = CLASS_IDS.get(class_id)
        if expected is None:
            problems.append(f"{name}: &{file_id} has class id {class_id}, which this checker does not know")
        elif expected != type_name:
            problems.append(f"{name}: &{file_id} is !u!{class_id} ({expected}) but says {type_name}")
        if file_id in docs:
            problems.append(f"{name}: &{file_id} appears twice")
        docs[file_id] = (class_id, type_name, fields or {})
    return docs


def script_fields(script: Path, root: Path) -> tuple[str | None, set[str], set[str]]:
    """(class name, serialized field names, required component types) of the MonoBehaviour in `script`
    (partial classes are gathered from the other files of the package)."""
    text = script.read_text()
    m = re.search(r"\bclass\s+(\w+)\s*:\s*MonoBehaviour", text)
    if not m:
        return None, set(), set()
    name = m.group(1)
    parts = [p.read_text() for p in root.rglob("*.cs") if re.search(rf"\bpartial\s+class\s+{name}\b", p.read_text())] or [text]
    fields, required = set(), set()
    for part in parts:
        code = re.sub(r"//[^\n]*", "", re.sub(r'"(?:\\.|[^"\\])*"', '""', part))  # strings, then comments
        fields |= set(re.findall(r"^\s*(?:\[[^\]]*\]\s*)*public\s+(?!static|const|readonly|override|event|class|enum|struct)"
                                 r"[\w\.<>\[\],]+\s+(\w+)\s*(?:=[^;]*)?;", code, re.M))
        fields |= set(re.findall(r"\[SerializeField\][^;{]*?\s(\w+)\s*(?:=[^;]*)?;", code))
        required |= set(re.findall(r"RequireComponent\(typeof\((\w+)\)\)", code))
    return name, fields, required


def asset(guids: dict[str, Path], ref: dict | None, suffix: str) -> Path | None:
    """The package file a {fileID, guid, type} reference points at, if it is one of kind `suffix`."""
    path = guids.get((ref or {}).get("guid"))
    return path if path is not None and path.suffix == suffix else None


def components(docs: dict, game_object: int) -> list[int]:
    """The fileIDs a GameObject lists as its components."""
    return [e["component"]["fileID"] for e in docs.get(game_object, (0, "", {}))[2].get("m_Component", [])]


def check_file(path: Path, text: str, root: Path, guids: dict[str, Path], problems: list[str]) -> None:
    name = str(path.relative_to(root))
    docs = parse(text, name, problems)
    for file_id, (class_id, type_name, fields) in docs.items():
        where = f"{name}: {type_name} &{file_id}"
        for ref_path, ref in references(fields):
            target, guid = ref.get("fileID"), ref.get("guid")
            if guid is None:
                if target not in (0, None) and target not in docs:
                    problems.append(f"{where}.{ref_path}: fileID {target} is not in the file")
            elif guid not in BUILTIN_GUIDS and guid not in guids:
                problems.append(f"{where}.{ref_path}: guid {guid} belongs to no .meta in the package")
        if type_name == "GameObject":
            for entry in fields.get("m_Component", []):
                comp = entry["component"]["fileID"]
                if comp not in docs or docs[comp][2].get("m_GameObject", {}).get("fileID") != file_id:
                    problems.append(f"{where}: component {comp} does not belong to it")
        elif "m_GameObject" in fields:
            owner = fields["m_GameObject"]["fileID"]
            if file_id not in components(docs, owner):
                problems.append(f"{where}: its GameObject {owner} does not list it")
        if type_name == "MonoBehaviour":
            script = asset(guids, fields.get("m_Script"), ".cs")
            if script is None:
                problems.append(f"{where}: m_Script is not a C# script of the package")
                continue
            cls, known, required = script_fields(script, root)
            if cls != script.stem:
                problems.append(f"{where}: {script.name} has no MonoBehaviour named {script.stem}")
                continue
            for field in sorted(set(fields) - MONO_KEYS - known):
                problems.append(f"{where}: {cls} has no serialized field {field}")
            owner = fields["m_GameObject"]["fileID"]
            present = {docs[c][1] for c in components(docs, owner) if c in docs}
            for need in sorted(required - present):
                problems.append(f"{where}: {cls} requires a {need} on its GameObject")
        if type_name == "Material":
            shader = asset(guids, fields.get("m_Shader"), ".shader")
            if shader is None:
                problems.append(f"{where}: m_Shader is not a shader of the package")
            else:
                declared = re.search(r'^\s*Shader\s+"([^"]+)"', shader.read_text(), re.M)
                choice = (root / "Runtime" / "Core" / "FaceMaterialChoice.cs").read_text()
                fallback = re.search(r'PackageShader\s*=\s*"([^"]+)"', choice)
                if not declared or not fallback or declared.group(1) != fallback.group(1):
                    problems.append(f"{where}: its shader is not FaceMaterialChoice.PackageShader (drawn by every pipeline)")
        if type_name == "PrefabInstance":
            source = asset(guids, fields.get("m_SourcePrefab"), ".prefab")
            if source is None:
                problems.append(f"{where}: m_SourcePrefab is not a prefab of the package")
                continue
            prefab_docs = parse(source.read_text(), source.name, problems)
            for mod in fields["m_Modification"].get("m_Modifications", []):
                if mod["target"].get("guid") != fields["m_SourcePrefab"]["guid"] or mod["target"]["fileID"] not in prefab_docs:
                    problems.append(f"{where}: modification of {mod['propertyPath']} targets no object of {source.name}")
    if path.suffix == ".prefab":
        roots = [f for f, (_, t, body) in docs.items() if t == "Transform" and body.get("m_Father", {}).get("fileID") == 0]
        if len(roots) != 1:
            problems.append(f"{name}: a prefab has exactly one root Transform, found {len(roots)}")


def check(root: Path) -> list[str]:
    problems: list[str] = []
    guids = package_guids(root)
    assets = sorted(p for p in root.rglob("*") if p.suffix in ASSET_SUFFIXES)
    for path in assets:
        check_file(path, path.read_text(), root, guids, problems)
    import json
    for sample in json.loads((root / "package.json").read_text()).get("samples", []):
        folder = root / sample["path"]
        if not folder.is_dir() or not list(folder.glob("*.unity")):
            problems.append(f"package.json: sample {sample['displayName']} has no scene in {sample['path']}")
    return problems


def selftest(root: Path) -> int:
    """Plants one fault at a time in the sample's prefab and scene; each must be reported."""
    prefab = root / "Samples~" / "TalkingNpc" / "TalkingNpc.prefab"
    scene = root / "Samples~" / "TalkingNpc" / "TalkingNpc.unity"
    guids = package_guids(root)
    faults = [
        (prefab, "targetRenderer: {fileID: 3410100004}", "targetRenderer: {fileID: 999}", "is not in the file"),
        (prefab, "  extraStartDelayMs: 300", "  extraStartDelaysMs: 300", "no serialized field extraStartDelaysMs"),
        (prefab, "  - component: {fileID: 3410100005}\n", "", "requires a AudioSource"),
        (prefab, "--- !u!33 &3410100003\nMeshFilter:", "--- !u!33 &3410100003\nMeshRenderer:", "says MeshRenderer"),
        (scene, "propertyPath: m_RootOrder", "propertyPath: m_RootOrder\n    - target: {fileID: 42, guid: 5f56ce33e6696d32449c97b1a4a25853, type: 3}\n      propertyPath: m_Name",
         "targets no object"),
        (scene, "guid: 867a03455fc7594822935930c1193f76", "guid: 867a03455fc7594822935930c1193f77", "belongs to no .meta"),
        (scene, "  address: 127.0.0.1:50051", "  address: [127.0.0.1:50051", "is not valid YAML"),
    ]
    failed = 0
    for path, old, new, expected in faults:
        text = path.read_text()
        assert old in text, f"selftest: {old!r} not in {path.name}"
        problems: list[str] = []
        check_file(path, text.replace(old, new, 1), root, guids, problems)
        if not any(expected in p for p in problems):
            print(f"selftest: planting {new!r} in {path.name} was not reported as {expected!r}: {problems}", file=sys.stderr)
            failed += 1
    clean: list[str] = []
    for path in (prefab, scene):
        check_file(path, path.read_text(), root, guids, clean)
    if clean:
        print("selftest: the unmodified sample has problems: " + "; ".join(clean), file=sys.stderr)
        failed += 1
    print(f"check_unity_assets selftest: {len(faults) - failed if not clean else 0}/{len(faults)} planted faults found")
    return 1 if failed else 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--selftest", action="store_true")
    args = ap.parse_args()
    if args.selftest:
        return selftest(ROOT)
    problems = check(ROOT)
    if problems:
        print("Unity assets with problems:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    count = len([p for p in ROOT.rglob("*") if p.suffix in ASSET_SUFFIXES])
    print(f"{count} Unity assets (scene, prefab, material) check out")
    return 0


if __name__ == "__main__":
    sys.exit(main())
