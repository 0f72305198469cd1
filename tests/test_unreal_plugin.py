"""Structural checks of the Unreal plugin (unreal_plugin/), which cannot be built on this machine.

What a missing engine cannot tell us, these catch before an engine build does: a broken .uplugin, a module
without Build.cs or IMPLEMENT_MODULE, a header included from a module that is not a dependency, a
.generated.h that is not the last include, a Blueprint-visible member without a Category, and above all a
call into the client core that does not match client_core/include/avatarlab/avatarlab.h (unknown function,
wrong number of arguments, unknown type or constant). The plain-C++ glue (no Unreal headers: handle
ownership, the player's clock, the face session that presents off the game thread, the voice-over tap) is
compiled with g++ and run, against the real client core library and a live service when they are there.
"""
from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import xml.dom.minidom

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
PLUGIN = REPO / "unreal_plugin"
SOURCE = PLUGIN / "Source"
CORE_HEADER = REPO / "client_core" / "include" / "avatarlab" / "avatarlab.h"
EXTERNAL = SOURCE / "ThirdParty" / "AvatarLabClientCore"
GLUE = SOURCE / "AvatarLab" / "Public" / "AvatarLabCoreGlue.h"
PRIVATE = SOURCE / "AvatarLab" / "Private"
COMPONENT = PRIVATE / "AvatarLabFaceComponent.cpp"
# Plain C++ compiled into the runtime module and, here, by g++: no Unreal header may creep in.
GLUE_FILES = [GLUE, GLUE.parent / "AvatarLabMouthGlue.h"] + [PRIVATE / f"AvatarLab{name}.{ext}" for name in ("FaceSession", "VoiceTap") for ext in ("h", "cpp")]
GLUE_SOURCES = [p for p in GLUE_FILES if p.suffix == ".cpp"]
GLUE_TESTS = REPO / "tests" / "unreal_glue"


# ---------------------------------------------------------------------------------------------- C/C++ scanning

def strip_comments_and_strings(code: str) -> str:
    """Blanks out comments and string/char literals (keeping newlines), so names in them are not seen."""
    out, i, n = [], 0, len(code)
    while i < n:
        c = code[i]
        if code.startswith("//", i):
            j = code.find("\n", i)
            i = n if j < 0 else j
        elif code.startswith("/*", i):
            j = code.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("".join(ch if ch == "\n" else " " for ch in code[i:j]))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and code[j] != c:
                j += 2 if code[j] == "\\" else 1
            out.append(c + " " * (min(j, n) - i - 1) + c)
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


class CoreApi:
    """What avatarlab.h declares: functions with their parameter counts, type names and AVL_ constants."""

    def __init__(self, header_text: str):
        code = strip_comments_and_strings(header_text)
        self.functions: dict[str, int] = {}
        decl = re.compile(r"AVL_API\s+[\w\s\*]+?AVL_CALL\s+(avl_\w+)\s*\(([^)]*)\)\s*;")
        for m in decl.finditer(code):
            params = " ".join(m.group(2).split())
            self.functions[m.group(1)] = 0 if params in ("", "void") else params.count(",") + 1
        self.api_declarations = len(re.findall(r"\bAVL_API\s+[\w\s\*]+?AVL_CALL\b", code))
        self.types = set(re.findall(r"typedef\s+struct\s+\w+\s+(avl_\w+)\s*;", code))
        self.types |= set(re.findall(r"}\s*(avl_\w+)\s*;", code))                      # typedef struct/enum {...} name;
        self.types |= set(re.findall(r"typedef\s+[\w\s]+?\b(avl_\w+)\s*;", code))      # typedef int32_t avl_status;
        self.types |= set(re.findall(r"typedef\s+[^;]*\(\s*AVL_CALL\s*\*\s*(avl_\w+)\s*\)", code))  # callbacks
        self.constants = set(re.findall(r"\b(AVL_[A-Z0-9_]+)\b", code))


def find_avl_uses(code: str) -> tuple[list[tuple[str, int | None]], set[str], set[str]]:
    """In C++ code: (avl_ calls with their argument counts, other avl_ names, AVL_ names) outside comments and strings.

    The argument count is None when the name is followed by "(" but is not called (e.g. a declaration)."""
    code = strip_comments_and_strings(code)
    calls: list[tuple[str, int | None]] = []
    names: set[str] = set()
    for m in re.finditer(r"\b(avl_\w+)\b", code):
        rest = code[m.end():]
        stripped = rest.lstrip()
        if stripped.startswith("("):
            start = m.end() + (len(rest) - len(stripped))
            calls.append((m.group(1), count_call_args(code, start)))
        else:
            names.add(m.group(1))
    constants = set(re.findall(r"\b(AVL_[A-Z0-9_]+)\b", code))
    return calls, names, constants


def count_call_args(code: str, open_paren: int) -> int:
    """Number of top-level arguments of the call whose "(" is at open_paren (comments/strings already blanked)."""
    depth, commas, nonblank = 0, 0, False
    for ch in code[open_paren:]:
        if ch in "([{":
            depth += 1
            if depth == 1:
                continue
        elif ch in ")]}":
            depth -= 1
            if depth == 0:
                return commas + 1 if nonblank else 0
        elif ch == "," and depth == 1:
            commas += 1
            continue
        if depth >= 1 and not ch.isspace():
            nonblank = True
    raise AssertionError("unbalanced parentheses after offset %d" % open_paren)


def api_mismatches(api: CoreApi, code: str, where: str) -> list[str]:
    """Everything in `code` that uses the client core in a way avatarlab.h does not declare."""
    problems = []
    calls, names, constants = find_avl_uses(code)
    for name, argc in calls:
        if name in api.types:  # e.g. a functional cast or constructor-style init of a struct type
            continue
        if name not in api.functions:
            problems.append(f"{where}: calls {name}, which avatarlab.h does not declare")
        elif argc is not None and argc != api.functions[name]:
            problems.append(f"{where}: calls {name} with {argc} arguments; avatarlab.h declares {api.functions[name]}")
    for name in sorted(names):
        if name not in api.types and name not in api.functions:
            problems.append(f"{where}: uses {name}, which avatarlab.h does not declare")
    for name in sorted(constants):
        if name not in api.constants:
            problems.append(f"{where}: uses {name}, which avatarlab.h does not define")
    return problems


STUBS = SOURCE / "AvatarLab" / "Private" / "AvatarLabCoreStubs.cpp"


def plugin_cpp_files() -> list[pathlib.Path]:
    """Hand-written plugin C++ (not the shipped header copy, not the generated stubs)."""
    staged = EXTERNAL / "include"
    return sorted(p for p in SOURCE.rglob("*") if p.suffix in (".h", ".cpp") and staged not in p.parents and p != STUBS)


@pytest.fixture(scope="module")
def api() -> CoreApi:
    return CoreApi(CORE_HEADER.read_text())


# ---------------------------------------------------------------------------------------------- the header parser itself

def test_header_parser_sees_every_declaration(api):
    # Every AVL_API declaration must be parsed, or calls to the missed ones would be reported wrongly.
    assert api.api_declarations == len(api.functions), sorted(api.functions)
    assert len(api.functions) >= 40
    assert api.functions["avl_context_create"] == 5
    assert api.functions["avl_session_present"] == 3
    assert api.functions["avl_get_version"] == 0
    assert api.functions["avl_session_copy_surface"] == 8
    assert {"avl_session", "avl_status", "avl_frame_info", "avl_event_fn", "avl_log_fn", "avl_session_settings"} <= api.types
    assert {"AVL_OK", "AVL_ERR_UNAVAILABLE", "AVL_API_VERSION", "AVL_EVENT_STARTED", "AVL_WIRE_JPEG"} <= api.constants


def test_checker_reports_wrong_uses(api):
    # The checker must fail on what would fail to compile, and not on names in comments or strings.
    bad = """
        avl_session_present(Session.get(), Pos);                 // one argument short
        avl_session_presnt(Session.get(), Pos, &Info);           // misspelled
        avl_frame_inf Info;                                      // unknown type
        if (Status == AVL_ERR_TIMEOUT) {}                        // unknown constant
    """
    problems = api_mismatches(api, bad, "bad.cpp")
    assert len(problems) == 4, problems
    good = """
        // avl_not_a_function(1) in a comment; "AVL_NOT_A_CONSTANT" in a string
        const avl_status S = avl_session_copy_surface(Session.get(), X, Y, W, H, F(A, B), static_cast<int32>(P), Size);
        avl_frame_info Info = {}; AvatarLabGlue::Use(AVL_OK, AVL_NO_NEW_FRAME);
        avl_event_fn Callback = &Forward; (void)avl_get_version();
    """
    assert api_mismatches(api, good, "good.cpp") == []


# ---------------------------------------------------------------------------------------------- the plugin against the header

def test_every_client_core_use_matches_the_header(api):
    files = plugin_cpp_files()
    assert files, "no C++ files under unreal_plugin/Source"
    problems, used = [], set()
    for path in files:
        text = path.read_text()
        problems += api_mismatches(api, text, str(path.relative_to(REPO)))
        used |= {name for name, _ in find_avl_uses(text)[0]}
    assert problems == []
    # The plugin exercises the parts of the API its features need (clock, dirty-rect upload, audio, errors).
    for needed in ("avl_context_create", "avl_client_create", "avl_client_open_speak", "avl_client_open_animate",
                   "avl_session_set_playback", "avl_session_present_playback", "avl_session_copy_surface",
                   "avl_session_push_audio", "avl_session_end_audio", "avl_session_read_audio", "avl_session_release",
                   "avl_session_error", "avl_last_error", "avl_get_version", "avl_client_create_avatar"):
        assert needed in used, f"the plugin never calls {needed}"


def test_shipped_header_is_the_client_core_header():
    # The plugin ships the header, so a copied plugin always compiles (with or without a library).
    shipped = EXTERNAL / "include" / "avatarlab" / "avatarlab.h"
    assert shipped.read_bytes() == CORE_HEADER.read_bytes(), "shipped avatarlab.h is stale: rerun unreal_plugin/stage_client_core.sh"


def test_a_missing_library_never_breaks_the_project_build():
    # Build.cs must not throw for a missing library or platform: it builds against the stubs instead.
    text = strip_comments_and_strings_keep(build_cs("AvatarLabClientCore").read_text())
    assert "BuildException" not in text
    assert '"AVATARLAB_WITH_CLIENT_CORE=0"' in text and '"AVATARLAB_WITH_CLIENT_CORE=1"' in text
    loader = (SOURCE / "AvatarLab" / "Private" / "AvatarLabModule.cpp").read_text()
    assert "#if !AVATARLAB_WITH_CLIENT_CORE" in loader
    res = subprocess.run([sys.executable, str(REPO / "tools" / "gen_unreal_core_stubs.py"), "--check"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


STUB_DRIVER = r"""
#include "avatarlab/avatarlab.h"
#include <cstdio>
#include <cstring>
int main() {
    avl_context* context = nullptr;
    if (avl_context_create(AVL_API_VERSION, nullptr, nullptr, AVL_LOG_OFF, &context) != AVL_ERR_UNAVAILABLE) return 1;
    if (avl_get_version() != 0) return 2;
    if (!std::strstr(avl_last_error(), "make plugins")) return 3;
    avl_session* session = nullptr;
    avl_session_release(&session);
    std::printf("%s\n", avl_last_error());
    return 0;
}
"""


def test_stubs_link_every_function_and_fail_with_the_fix(tmp_path):
    # The library removed: what the game links instead must define every function of the header and
    # answer each call with UNAVAILABLE and a message naming the fix.
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ not installed")
    (tmp_path / "main.cpp").write_text(STUB_DRIVER)
    exe = tmp_path / "stubbed"
    res = subprocess.run([gxx, "-std=c++17", "-Wall", "-Wextra", "-Werror", "-DAVATARLAB_WITH_CLIENT_CORE=0", "-DAVL_STATIC=1",
                          f"-I{CORE_HEADER.parent.parent}", str(STUBS), str(tmp_path / "main.cpp"), "-o", str(exe)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr  # an undefined avl_ function would fail the link here
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0 and "client core library missing" in run.stdout, (run.returncode, run.stdout)


# ---------------------------------------------------------------------------------------------- .uplugin and modules

def uplugin() -> dict:
    return json.loads((PLUGIN / "AvatarLab.uplugin").read_text())


def build_cs(module: str) -> pathlib.Path:
    hits = [p for p in SOURCE.rglob(f"{module}.Build.cs")]
    assert len(hits) == 1, f"module {module}: expected one {module}.Build.cs under Source/, found {hits}"
    return hits[0]


def dependencies(build_text: str) -> dict[str, list[str]]:
    code = strip_comments_and_strings_keep(build_text)
    deps: dict[str, list[str]] = {}
    for kind in ("PublicDependencyModuleNames", "PrivateDependencyModuleNames", "DynamicallyLoadedModuleNames"):
        names: list[str] = []
        for m in re.finditer(kind + r"\.(?:Add|AddRange)\s*\(([^;]*?)\)\s*;", code, re.S):
            names += re.findall(r'"(\w+)"', m.group(1))
        deps[kind] = names
    return deps


def strip_comments_and_strings_keep(code: str) -> str:
    """Comments removed, strings kept (module names are strings in Build.cs)."""
    code = re.sub(r"/\*.*?\*/", " ", code, flags=re.S)
    return re.sub(r"//[^\n]*", "", code)


def test_uplugin_is_valid():
    d = uplugin()
    assert d["FileVersion"] == 3
    for field in ("Version", "VersionName", "FriendlyName", "Description", "Category", "CanContainContent", "Modules"):
        assert field in d, f"AvatarLab.uplugin lacks {field}"
    names = [m["Name"] for m in d["Modules"]]
    assert len(names) == len(set(names))
    types = {m["Name"]: m["Type"] for m in d["Modules"]}
    assert types == {"AvatarLab": "Runtime", "AvatarLabEditor": "Editor"}
    phases = {"EarliestPossible", "PostConfigInit", "PostSplashScreen", "PreEarlyLoadingScreen", "PreLoadingScreen",
              "PreDefault", "Default", "PostDefault", "PostEngineInit", "None"}
    for m in d["Modules"]:
        assert m.get("LoadingPhase", "Default") in phases
        assert set(m.get("PlatformAllowList", [])) <= {"Win64", "Mac", "Linux", "Android", "IOS"}


@pytest.mark.parametrize("module", ["AvatarLab", "AvatarLabEditor"])
def test_each_module_has_build_rules_and_a_module_class(module):
    root = SOURCE / module
    assert (root / "Public").is_dir() and (root / "Private").is_dir()
    text = build_cs(module).read_text()
    assert re.search(rf"public\s+class\s+{module}\s*:\s*ModuleRules", text)
    assert re.search(rf"public\s+{module}\s*\(\s*ReadOnlyTargetRules\s+Target\s*\)\s*:\s*base\s*\(\s*Target\s*\)", text)
    impl = [m for p in root.rglob("*.cpp") for m in re.findall(r"IMPLEMENT_MODULE\s*\(\s*(\w+)\s*,\s*(\w+)\s*\)",
                                                                strip_comments_and_strings_keep(p.read_text()))]
    assert len(impl) == 1 and impl[0][1] == module, impl
    module_class = impl[0][0]
    assert any(re.search(rf"class\s+(?:\w+_API\s+)?{module_class}\s*:\s*public\s+IModuleInterface", p.read_text())
               for p in root.rglob("*.h")), f"{module_class} is not declared as an IModuleInterface"


def test_external_module_declares_every_platform():
    text = build_cs("AvatarLabClientCore").read_text()
    assert re.search(r"Type\s*=\s*ModuleType\.External\s*;", text)
    assert not list(EXTERNAL.rglob("*.cpp")), "an External module has no code of its own"
    for platform in ("Win64", "Mac", "Linux", "Android", "IOS"):
        assert f"UnrealTargetPlatform.{platform}" in text
    assert 'PublicDelayLoadDLLs.Add("avatarlab_client.dll")' in text
    assert "avatarlab_client.lib" in text and "libavatarlab_client.a" in text
    upl = re.search(r'"AndroidPlugin"\s*,\s*Path\.Combine\(ModuleDirectory,\s*"([^"]+)"\)', text)
    assert upl, "Android needs the UPL file registered via AdditionalPropertiesForReceipt"
    dom = xml.dom.minidom.parse(str(EXTERNAL / upl.group(1)))
    copies = [e.getAttribute("src") for e in dom.getElementsByTagName("copyFile")]
    assert copies == ["$S(PluginDir)/lib/Android/arm64-v8a/libavatarlab_client.so"]
    assert 'Path.Combine(LibDir, "Android", "arm64-v8a", "libavatarlab_client.so")' in text  # the file the UPL copies


def test_library_paths_agree_between_build_rules_loader_and_staging():
    # The runtime module loads the library from the path the Build.cs ships and the staging script writes.
    build = build_cs("AvatarLabClientCore").read_text()
    loader = (SOURCE / "AvatarLab" / "Private" / "AvatarLabModule.cpp").read_text()
    stage = (PLUGIN / "stage_client_core.sh").read_text()
    loaded = re.findall(r'TEXT\("(Binaries/ThirdParty/AvatarLabClientCore/[^"]+)"\)', loader)
    assert len(loaded) == 3, loaded  # Windows, Mac, Linux
    for rel in loaded:
        folder, name = rel.rsplit("/", 1)
        assert f"$(PluginDir)/{rel}" in build or f'$(PluginDir)/{folder}/" + ' in build, f"{rel} is not a RuntimeDependency"
        assert f'$bin/{folder.removeprefix("Binaries/ThirdParty/AvatarLabClientCore/")}/{name}' in stage or \
            f'"$dest/{name}"' in stage, f"stage_client_core.sh does not write {rel}"


KNOWN_ENGINE_MODULES = {
    # module -> whether it may only be used by editor modules
    "Core": False, "CoreUObject": False, "Engine": False, "DeveloperSettings": False, "Projects": False,
    "RenderCore": False, "RHI": False, "ImageCore": False, "AudioMixerCore": False, "Slate": False, "SlateCore": False,
    "PropertyEditor": True, "UnrealEd": True,
}

# Headers the plugin includes, by the module that owns them (the Build.cs must depend on it).
INCLUDE_OWNERS = {
    "Interfaces/IPluginManager.h": "Projects",
    "Engine/DeveloperSettings.h": "DeveloperSettings",
    "RHITypes.h": "RHI",
    "ImageCore.h": "ImageCore",
    "ImageUtils.h": "Engine",
    "PropertyEditorModule.h": "PropertyEditor",
    "IDetailCustomization.h": "PropertyEditor",
    "DetailLayoutBuilder.h": "PropertyEditor",
    "DetailCategoryBuilder.h": "PropertyEditor",
    "DetailWidgetRow.h": "PropertyEditor",
    "Framework/Notifications/NotificationManager.h": "Slate",
    "Widgets/Notifications/SNotificationList.h": "Slate",
    "Widgets/Input/SButton.h": "Slate",
    "Widgets/Text/STextBlock.h": "SlateCore",
    "avatarlab/avatarlab.h": "AvatarLabClientCore",
    "Sound/SoundWaveProcedural.h": "Engine",
    "Components/AudioComponent.h": "Engine",
    "Subsystems/GameInstanceSubsystem.h": "Engine",
    "AudioDevice.h": "Engine",
    "AudioDeviceHandle.h": "Engine",
    "ISubmixBufferListener.h": "Engine",
    "Sound/SoundBase.h": "Engine",
    "Sound/SoundSubmix.h": "Engine",
    "Tasks/Task.h": "Core",
    "Misc/EngineVersionComparison.h": "Core",
}


def module_of(path: pathlib.Path) -> str:
    return path.relative_to(SOURCE).parts[0]


def visible_modules(module: str, seen: set[str] | None = None) -> set[str]:
    """The module, its direct dependencies, and the public dependencies of plugin modules it depends on."""
    seen = seen if seen is not None else set()
    if module in seen:
        return set()
    seen.add(module)
    deps = dependencies(build_cs(module).read_text()) if module not in KNOWN_ENGINE_MODULES else {}
    out = {module}
    for kind in ("PublicDependencyModuleNames", "PrivateDependencyModuleNames"):
        for dep in deps.get(kind, []):
            out.add(dep)
            if dep not in KNOWN_ENGINE_MODULES:
                out |= {d for d in dependencies(build_cs(dep).read_text())["PublicDependencyModuleNames"]}
    return out


def test_build_dependencies_are_consistent():
    plugin_modules = {p.name.removesuffix(".Build.cs") for p in SOURCE.rglob("*.Build.cs")}
    editor_modules = {m["Name"] for m in uplugin()["Modules"] if m["Type"].startswith("Editor")}
    for module in sorted(plugin_modules - {"AvatarLabClientCore"}):
        deps = dependencies(build_cs(module).read_text())
        public, private = deps["PublicDependencyModuleNames"], deps["PrivateDependencyModuleNames"]
        assert public or private, f"{module}: no dependencies parsed"
        assert not set(public) & set(private), f"{module}: listed both public and private: {set(public) & set(private)}"
        for dep in public + private:
            assert dep != module
            assert dep in plugin_modules or dep in KNOWN_ENGINE_MODULES, f"{module}: unknown module {dep}"
            if module not in editor_modules:
                assert not KNOWN_ENGINE_MODULES.get(dep, False), f"runtime module {module} depends on editor-only {dep}"
                assert dep not in editor_modules, f"runtime module {module} depends on editor module {dep}"


def test_included_headers_come_from_declared_dependencies():
    problems = []
    for path in plugin_cpp_files():
        module = module_of(path)
        if module == "ThirdParty":
            continue
        allowed = visible_modules(module)
        for inc in re.findall(r'#include\s+"([^"]+)"', strip_comments_and_strings_keep(path.read_text())):
            owner = INCLUDE_OWNERS.get(inc)
            if owner and owner not in allowed:
                problems.append(f"{path.relative_to(REPO)} includes {inc} from {owner}, not a dependency of {module}")
    assert problems == []


# ---------------------------------------------------------------------------------------------- headers and reflection

def test_headers_have_pragma_once_or_guard():
    for path in (p for p in plugin_cpp_files() if p.suffix == ".h"):
        code = strip_comments_and_strings_keep(path.read_text()).lstrip()
        assert code.startswith("#pragma once") or re.match(r"#ifndef\s+(\w+)\s*\n\s*#define\s+\1\b", code), \
            f"{path.relative_to(REPO)}: no #pragma once or include guard before the first declaration"


def test_reflected_headers_include_generated_header_last():
    reflected = 0
    for path in plugin_cpp_files():
        code = strip_comments_and_strings_keep(path.read_text())
        macros = re.findall(r"^\s*(UCLASS|USTRUCT|UENUM|UINTERFACE)\s*\(", code, re.M)
        includes = re.findall(r'^\s*#include\s+[<"]([^">]+)[">]', code, re.M)
        generated = f"{path.stem}.generated.h"
        if not macros:
            assert not any(i.endswith(".generated.h") for i in includes), f"{path.name}: stray .generated.h"
            continue
        reflected += 1
        assert path.suffix == ".h", f"{path.name}: reflection macros belong in headers"
        assert includes and includes[-1] == generated, f"{path.name}: last include must be {generated}, is {includes[-1:]}"
        bodies = len(re.findall(r"\bGENERATED_BODY\s*\(\s*\)", code))
        assert bodies == macros.count("UCLASS") + macros.count("USTRUCT"), f"{path.name}: GENERATED_BODY count"
    assert reflected >= 3  # settings, subsystem, face component


def test_blueprint_visible_members_have_a_category():
    for path in (p for p in plugin_cpp_files() if p.suffix == ".h"):
        code = strip_comments_and_strings_keep(path.read_text())
        for m in re.finditer(r"\b(UFUNCTION|UPROPERTY)\s*\(([^)]*(?:\([^)]*\)[^)]*)*)\)", code):
            spec = m.group(2)
            exposed = re.search(r"\b(Blueprint\w*|Edit\w*|Visible\w*)\b", spec)
            if exposed and "Category" not in spec:
                line = code[:m.start()].count("\n") + 1
                pytest.fail(f"{path.relative_to(REPO)}:{line}: {m.group(1)}({spec}) is exposed without a Category")


def test_public_classes_export_with_the_module_api_macro():
    for path in (SOURCE / "AvatarLab" / "Public").glob("*.h"):
        code = strip_comments_and_strings_keep(path.read_text())
        for m in re.finditer(r"^(?:class|struct)\s+(\w+_API\s+)?([UFA]\w+)\s*:\s*public", code, re.M):
            if m.group(2).startswith("F") and "GENERATED_BODY" not in code[m.end():m.end() + 200]:
                continue  # plain C++ helpers inside the module may stay unexported
            assert m.group(1) and m.group(1).strip() == "AVATARLAB_API", f"{path.name}: {m.group(2)} not AVATARLAB_API"


# ---------------------------------------------------------------------------------------------- the component's structure

def component_code() -> str:
    return strip_comments_and_strings(COMPONENT.read_text())


def function_body(code: str, qualified_name: str) -> str:
    """The body of `qualified_name(...) { ... }` in code (comments and strings already blanked)."""
    m = re.search(re.escape(qualified_name) + r"\s*\([^)]*\)\s*(?:const\s*)?\{", code)
    assert m, f"{qualified_name} not found"
    depth, i = 1, m.end()
    while depth:
        depth += {"{": 1, "}": -1}.get(code[i], 0)
        i += 1
    return code[m.end():i - 1]


def test_glue_includes_no_unreal_header():
    # The glue is compiled here with g++ and no engine: only the standard library, the core and other glue.
    for path in GLUE_FILES:
        for inc in re.findall(r'#include\s+[<"]([^">]+)[">]', strip_comments_and_strings_keep(path.read_text())):
            assert inc.startswith("avatarlab/") or inc.startswith("AvatarLab") or "/" not in inc and "." not in inc \
                or inc in ("cmath", "cstring", "cstdint"), f"{path.name} includes {inc}"
            assert not inc.endswith(".generated.h") and inc not in ("CoreMinimal.h",), f"{path.name} includes {inc}"


def test_decoding_never_runs_on_the_game_thread():
    # The component never calls the core's presentation functions (JPEG decode, surface copies) itself: the face
    # session does, in RunPresent, which the component only ever runs inside a launched task.
    code = component_code()
    calls = {name for name, _ in find_avl_uses(code)[0]}
    assert not calls & {"avl_session_present", "avl_session_present_playback", "avl_session_copy_surface",
                        "avl_session_surface_pixels"}, calls
    runs = [m.start() for m in re.finditer(r"\bRunPresent\s*\(", code)]
    assert len(runs) == 1, "RunPresent must be called exactly once, inside the task"
    launch = re.search(r"UE::Tasks::Launch\s*\(\s*UE_SOURCE_LOCATION\s*,\s*\[(\w+)\]\s*\(\s*\)\s*\{\s*\1->RunPresent\s*\(\s*\)\s*;\s*\}\s*\)", code)
    assert launch, "RunPresent must run in UE::Tasks::Launch(UE_SOURCE_LOCATION, [Shared]() { Shared->RunPresent(); })"
    session = strip_comments_and_strings((PRIVATE / "AvatarLabFaceSession.cpp").read_text())
    body = function_body(session, "void FFaceSession::RunPresent")
    assert "avl_session_present_playback" in body and "avl_session_copy_surface" in body
    assert re.search(r"lock_guard<std::mutex>\s+\w+\(PresentMutex\)", body), "presents must hold PresentMutex"


def test_the_component_uses_the_cores_playback_policy():
    # Preroll, output latency and the end of a line are decided by the core (avl_session_present_playback),
    # not by the component: its settings only reach SetPlayback, and it keeps no clock arithmetic of its own.
    code = component_code()
    uses = [m.start() for m in re.finditer(r"\b(PrerollMs|AudioLatencyCompensationMs)\b", code)]
    assert len(uses) == 2, "the preroll and latency settings may only be passed to SetPlayback"
    assert re.search(r"SetPlayback\s*\(\s*\w+\.PrerollMs\s*,\s*\w+\.AudioLatencyCompensationMs\s*\)", code)
    for gone in ("NewestFramePtsMs", "DrainedAtSeconds", "PlayedAudioMs", "FPlatformTime::Seconds"):
        assert gone not in code, f"the component still has its own playback policy ({gone})"
    tick = function_body(code, "void UAvatarLabFaceComponent::ApplyPresentResults")
    assert "bStartPlayback" in tick and "bFinished" in tick


def test_voice_over_reaches_the_face_without_editor_only_data():
    # Cooked builds: PlayAudio goes through the submix tap; no editor-only PCM path is left.
    code = strip_comments_and_strings_keep(COMPONENT.read_text())
    assert "GetImportedSoundWaveData" not in code and "WITH_EDITOR\n" not in code.replace("WITH_EDITORONLY_DATA", "")
    tap = strip_comments_and_strings_keep((PRIVATE / "AvatarLabSubmixTap.h").read_text())
    assert re.search(r"class\s+FAvatarLabSubmixTap\s*:\s*public\s+ISubmixBufferListener", tap)
    # The listener's one pure virtual, with the engine's exact signature.
    assert re.search(r"virtual\s+void\s+OnNewSubmixBuffer\s*\(\s*const\s+USoundSubmix\s*\*\s*(?:/\*\w*\*/)?\s*,\s*float\s*\*\s*\w+\s*,"
                     r"\s*int32\s+\w+\s*,\s*int32\s+\w+\s*,\s*const\s+int32\s+\w+\s*,\s*double\s*(?:/\*\w*\*/)?\s*\)\s*override", tap)
    # UE 5.4's shared-reference API on both ends, for the same listener and submix.
    assert re.search(r"RegisterSubmixBufferListener\s*\(\s*SubmixListener\.ToSharedRef\(\)\s*,\s*\*Submix\s*\)", code)
    assert re.search(r"UnregisterSubmixBufferListener\s*\(\s*SubmixListener\.ToSharedRef\(\)\s*,\s*\*TappedSubmix\s*\)", code)
    assert re.search(r"MakeShared<FAvatarLabSubmixTap,\s*ESPMode::ThreadSafe>", code)
    header = strip_comments_and_strings_keep((SOURCE / "AvatarLab" / "Public" / "AvatarLabFaceComponent.h").read_text())
    assert re.search(r"bool\s+PlayAudio\s*\(\s*USoundBase\s*\*", header)


# ---------------------------------------------------------------------------------------------- plain C++ glue, compiled and run

GLUE_DRIVER = r"""
#include "AvatarLabCoreGlue.h"
#include "AvatarLabMouthGlue.h"
#include <cstdio>
#define CHECK(x) do { if (!(x)) { std::printf("FAILED line %d: %s\n", __LINE__, #x); return 1; } } while (0)
using namespace AvatarLabGlue;
int main() {
    // The player's clock: 48 kHz mono int16, 96000 bytes queued (1 s), 48000 still waiting -> 500 ms taken.
    avl_playback_clock c = PlayerClock(96000, 48000, 48000, 1, true);
    CHECK(c.audio_buffered_ms == 1000 && c.audio_played_ms == 500);
    c = PlayerClock(96000, 96000, 48000, 1, false);                    // queued, not started: -1
    CHECK(c.audio_buffered_ms == 1000 && c.audio_played_ms == -1);
    c = PlayerClock(96000, 96000, 48000, 1, true);                     // started, nothing taken yet
    CHECK(c.audio_played_ms == 0);
    c = PlayerClock(4 * 44100, 0, 44100, 2, true);                     // stereo: 4 bytes per frame
    CHECK(c.audio_buffered_ms == 1000 && c.audio_played_ms == 1000);
    c = PlayerClock(96000, -5, 0, 1, true);                            // no rate yet: nothing
    CHECK(c.audio_buffered_ms == 0 && c.audio_played_ms == 0);
    CHECK(PcmBytesToMs(32000, 16000, 1) == 1000 && PcmBytesToMs(3, 16000, 1) == 0);
    // Dirty rect: inside, clipped, empty, and absurd values from a bad frame.
    FRect r;
    avl_frame_info fi{};
    fi.dirty_x = 10; fi.dirty_y = 20; fi.dirty_width = 30; fi.dirty_height = 40;
    CHECK(DirtyRectOnSurface(fi, 256, 256, r) && r.X == 10 && r.Y == 20 && r.Width == 30 && r.Height == 40);
    fi.dirty_x = 240; fi.dirty_width = 100;
    CHECK(DirtyRectOnSurface(fi, 256, 256, r) && r.X == 240 && r.Width == 16);
    fi.dirty_x = -5; fi.dirty_width = 10;
    CHECK(DirtyRectOnSurface(fi, 256, 256, r) && r.X == 0 && r.Width == 5);
    fi.dirty_width = 0;
    CHECK(!DirtyRectOnSurface(fi, 256, 256, r));
    fi.dirty_x = 300; fi.dirty_width = 10;
    CHECK(!DirtyRectOnSurface(fi, 256, 256, r));
    fi.dirty_x = 0x7fffffff; fi.dirty_width = 0x7fffffff;
    CHECK(!DirtyRectOnSurface(fi, 256, 256, r));
    // Union of two changes not yet uploaded.
    FRect a{10, 20, 5, 5}, b{30, 5, 10, 10};
    FRect u = UnionRect(a, b);
    CHECK(u.X == 10 && u.Y == 5 && u.Width == 30 && u.Height == 20);
    u = UnionRect(b, b);
    CHECK(u.X == 30 && u.Y == 5 && u.Width == 10 && u.Height == 10);
    // PCM validation for Animate.
    CHECK(IsValidPcm16(32000, 16000, 1) && IsValidPcm16(4, 48000, 2));
    CHECK(!IsValidPcm16(3, 16000, 1) && !IsValidPcm16(6, 16000, 2) && !IsValidPcm16(4, 4000, 1) && !IsValidPcm16(4, 16000, 3));
    CHECK(!IsValidPcm16(0, 16000, 1));
    // Mouth curves for a 3D rig: the rest pose before any frame (sil, jaw closed), lookup by name whatever the
    // session's order, and the presets' and custom rows' morph target weights (summed, clamped, missing curves 0).
    FMouthCurves Mouth;
    CHECK(Mouth.Weight("sil") == 1.0f && Mouth.Weight("jawOpen") == 0.0f && Mouth.Weight("aa") == 0.0f && Mouth.PtsMs == -1);
    Mouth.SetRest({"ou", "aa", "sil"}, {"mouthFunnel", "jawOpen"});
    CHECK(Mouth.NumVisemes == 3 && Mouth.Weight("sil") == 1.0f && Mouth.Weights[2] == 1.0f);
    Mouth.Weights = {0.25f, 0.5f, 0.25f, 0.125f, 0.75f};
    CHECK(Mouth.Weight("jawOpen") == 0.75f && Mouth.Weight("ou") == 0.25f && Mouth.Weight("nope") == 0.0f);
    auto Morphs = MorphTargetWeights(Mouth, PresetRows(EMouthNaming::ArkitBlendshapes));
    CHECK(Morphs.size() == 18 && Morphs[0].first == "jawOpen" && Morphs[0].second == 0.75f);
    CHECK(Morphs[2].first == "mouthFunnel" && Morphs[2].second == 0.125f && Morphs[3].second == 0.0f);
    Morphs = MorphTargetWeights(Mouth, PresetRows(EMouthNaming::OculusVisemes));
    CHECK(Morphs.size() == 15 && Morphs[10].first == "viseme_aa" && Morphs[10].second == 0.5f);
    CHECK(Morphs[14].first == "viseme_U" && Morphs[14].second == 0.25f && Morphs[0].first == "viseme_sil" && Morphs[0].second == 0.25f);
    Morphs = MorphTargetWeights(Mouth, {{"jawOpen", "Jaw_Open", 1.0f}, {"aa", "Jaw_Open", 1.0f}, {"ou", "Mouth_Pucker", 2.0f}});
    CHECK(Morphs.size() == 2 && Morphs[0].first == "Jaw_Open" && Morphs[0].second == 1.0f);   // 0.75 + 0.5, clamped
    CHECK(Morphs[1].second == 0.5f);
    CHECK(PresetRows(EMouthNaming::Custom).empty());
    Mouth.SetRest({"sil", "aa"}, {"jawOpen"});
    CHECK(MorphTargetWeights(Mouth, PresetRows(EMouthNaming::ArkitBlendshapes))[0].second == 0.0f);  // silence: jaw closed
#ifdef WITH_LIBRARY
    // Ownership against the real library: the deleters release through avl_*_release exactly once.
    avl_context* raw = nullptr;
    CHECK(avl_context_create(AVL_API_VERSION, nullptr, nullptr, AVL_LOG_OFF, &raw) == AVL_OK && raw != nullptr);
    {
        FContextPtr context(raw);
        avl_client* client = nullptr;
        CHECK(avl_client_create(context.get(), "127.0.0.1:1", nullptr, nullptr, nullptr, &client) == AVL_OK);
        FClientPtr owned(client);
        avl_avatar* avatar = nullptr;
        CHECK(avl_client_get_avatar(nullptr, "x", &avatar) == AVL_ERR_INVALID_ARGUMENT);
        FAvatarPtr none(avatar);  // a null handle is a no-op to release
        // A session that never started: no names yet, so the mouth rests.
        avl_session_settings Settings{};
        Settings.audio_encoding = AVL_AUDIO_PCM_S16LE;
        Settings.sample_rate_hz = 16000;
        Settings.motion_only = 1;
        avl_session* raw_session = nullptr;
        CHECK(avl_client_open_animate(owned.get(), "a", &Settings, nullptr, nullptr, &raw_session) == AVL_OK);
        FSessionPtr session(raw_session);
        FMouthCurves Rest;
        Rest.Weights[0] = 0.5f;
        CHECK(!Rest.Read(session.get()) && Rest.Weight("sil") == 1.0f && Rest.Weight("jawOpen") == 0.0f);
    }
    avl_context* wrong = nullptr;
    CHECK(avl_context_create(((AVL_API_VERSION_MAJOR + 1) << 16), nullptr, nullptr, AVL_LOG_OFF, &wrong) == AVL_ERR_VERSION_MISMATCH);
    CHECK(wrong == nullptr);
#endif
    std::printf("glue ok\n");
    return 0;
}
"""

# Unreal builds with shadowing and undefined-macro warnings as errors; so does this.
STRICT = ["-std=c++17", "-Wall", "-Wextra", "-Werror", "-Wconversion", "-Wsign-conversion", "-Wshadow", "-Wundef", "-pthread"]


def compile_cpp(tmp_path: pathlib.Path, name: str, sources: list[pathlib.Path], extra: list[str]) -> pathlib.Path:
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ not installed")
    exe = tmp_path / name
    cmd = [gxx, *STRICT, f"-I{GLUE.parent}", f"-I{PRIVATE}", f"-I{CORE_HEADER.parent.parent}",
           *map(str, sources), "-o", str(exe)] + extra
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    return exe


def compile_glue(tmp_path: pathlib.Path, extra: list[str]) -> pathlib.Path:
    src = tmp_path / "glue_test.cpp"
    src.write_text(GLUE_DRIVER)
    return compile_cpp(tmp_path, "glue_test", [src], extra)


def test_glue_compiles_without_unreal_and_behaves(tmp_path):
    exe = compile_glue(tmp_path, [])
    res = subprocess.run([str(exe)], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0 and "glue ok" in res.stdout, res.stdout + res.stderr


def test_voice_tap_cuts_lines_mutes_the_submix_and_survives_two_threads(tmp_path):
    # What the submix listener feeds the tap on the audio render thread and what the component takes on the game
    # thread: lines by silence (pauses kept), the submix muted, a stopped submix, a rate change, an overrun, and
    # both threads at once (tests/unreal_glue/voice_tap_test.cpp).
    exe = compile_cpp(tmp_path, "voice_tap_test", [GLUE_TESTS / "voice_tap_test.cpp", PRIVATE / "AvatarLabVoiceTap.cpp"], [])
    res = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "voice tap ok" in res.stdout, res.stdout + res.stderr


def client_core_library() -> pathlib.Path | None:
    env = os.environ.get("AVATARLAB_CLIENT_LIB")
    staged = PLUGIN / "Binaries" / "ThirdParty" / "AvatarLabClientCore" / "Linux" / "x86_64-unknown-linux-gnu"
    candidates = [pathlib.Path(env)] if env else [staged / "libavatarlab_client.so",
                                                  REPO / "build" / "client_core" / "libavatarlab_client.so"]
    return next((p for p in candidates if p.exists()), None)


def need_library() -> pathlib.Path:
    lib = client_core_library()
    if lib is None:
        pytest.skip("no built client core: run `make plugins` (or client_core/build_and_test.sh), or set AVATARLAB_CLIENT_LIB")
    return lib


def test_glue_owns_real_client_core_handles(tmp_path):
    lib = need_library()
    exe = compile_glue(tmp_path, ["-DWITH_LIBRARY", str(lib), f"-Wl,-rpath,{lib.parent}"])
    res = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "glue ok" in res.stdout, res.stdout + res.stderr


def test_face_session_presents_off_the_game_thread_against_a_live_service(tmp_path):
    # The component's session logic against the real library and `avatarlab serve --model tiny`: a voice line
    # pushed in chunks, the player's clock reported every tick, presents (JPEG decode, delta rectangles) on threads
    # of their own; the voice starts after the preroll, the frame follows what is heard (played - output latency),
    # the line finishes after the last audio is heard, the uploaded texture equals the core's surface, and
    # closing while a present runs is safe (tests/unreal_glue/face_session_live_test.cpp).
    lib = need_library()
    from reliability_support import ServerProcess, pcm16, portrait_jpeg, speech
    from avatar_service.api import pb

    exe = compile_cpp(tmp_path, "face_session_live_test",
                      [GLUE_TESTS / "face_session_live_test.cpp", PRIVATE / "AvatarLabFaceSession.cpp"],
                      [str(lib), f"-Wl,-rpath,{lib.parent}"])
    line = tmp_path / "line.raw"
    line.write_bytes(pcm16(speech(2.5)))
    server = ServerProcess(tmp_path / "store")
    try:
        avatar_id = server.stub().CreateAvatar(pb.CreateAvatarRequest(portrait_image=portrait_jpeg()), timeout=60).avatar_id
        res = subprocess.run([str(exe), server.target, avatar_id, str(line)], capture_output=True, text=True, timeout=300)
    finally:
        server.terminate()
    assert res.returncode == 0 and "face session ok" in res.stdout, res.stdout + res.stderr + server.log()
