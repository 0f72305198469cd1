#!/usr/bin/env python3
"""Checks a packaged Linux client core before it is staged into the plugins.

  check_linux_library.py path/to/libavatarlab_client.so

It must need nothing but glibc (or libraries bundled beside it, found through an $ORIGIN rpath),
export only the avl_ C API, and carry no debug sections. Exits 1 and says what is wrong otherwise.
"""
import pathlib
import re
import subprocess
import sys

GLIBC = re.compile(r"^(libc|libm|libdl|libpthread|librt|ld-linux-x86-64)\.so(\.\d+)*$")
# What a bundled dependency may need from the system besides glibc.
CXX_RUNTIME = re.compile(r"^(libstdc\+\+|libgcc_s)\.so(\.\d+)*$")


def main(path: str) -> int:
    lib = pathlib.Path(path)
    dyn = subprocess.run(["readelf", "-d", str(lib)], capture_output=True, text=True, check=True).stdout
    needed = re.findall(r"\(NEEDED\).*\[(.+?)\]", dyn)
    rpath = re.findall(r"\((?:RPATH|RUNPATH)\).*\[(.+?)\]", dyn)
    problems = []
    bundled = []
    for name in needed:
        if GLIBC.match(name):
            continue
        if not (lib.parent / name).exists() or "$ORIGIN" not in "".join(rpath):
            problems.append(f"needs {name}, which is neither glibc nor bundled beside it with an $ORIGIN rpath")
            continue
        bundled.append(name)
        dep = subprocess.run(["readelf", "-d", str(lib.parent / name)], capture_output=True, text=True, check=True).stdout
        for sub in re.findall(r"\(NEEDED\).*\[(.+?)\]", dep):
            if not (GLIBC.match(sub) or CXX_RUNTIME.match(sub) or (lib.parent / sub).exists()):
                problems.append(f"bundled {name} needs {sub}, which is not bundled")
    syms = subprocess.run(["nm", "-D", "--defined-only", str(lib)], capture_output=True, text=True, check=True).stdout
    exported = sorted({line.split()[-1] for line in syms.splitlines() if re.search(r" [TDBRVW] ", line)})
    # Weak RTTI of std:: templates (typeinfo _ZTI / names _ZTS) is vague linkage the compiler
    # emits whatever the visibility; harmless. Anything else means internals leak out.
    stray = [s for s in exported if not s.startswith(("avl_", "_ZTI", "_ZTS"))]
    if stray:
        problems.append(f"exports {len(stray)} non-avl_ symbols, e.g. {stray[:5]}")
    sections = subprocess.run(["readelf", "-S", str(lib)], capture_output=True, text=True, check=True).stdout
    if ".debug_info" in sections:
        problems.append("has debug sections (not stripped)")
    for p in problems:
        print(f"{lib}: {p}", file=sys.stderr)
    if not problems:
        size = lib.stat().st_size / 1e6
        print(f"{lib.name}: {size:.1f} MB, needs {', '.join(needed)} (bundled: {', '.join(bundled) or 'none'}); "
              f"exports {sum(x.startswith('avl_') for x in exported)} avl_ functions")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
