"""The README's architecture tour lists every module of avatar_service, under its own package."""
from __future__ import annotations

import pathlib
import re

REPO = pathlib.Path(__file__).resolve().parents[1]


def tour_sections() -> dict[str, str]:
    text = (REPO / "README.md").read_text()
    block = text.split("## Architecture tour", 1)[1].split("```", 2)[1]
    sections, current = {}, None
    for line in block.splitlines():
        m = re.match(r"^  (\w+)(/?)\s", line)
        if m:  # "  pkg/  ..." opens a package; "  module ..." the top-level modules' line
            current = m.group(1) if m.group(2) else ""
        elif not line.startswith("   "):
            current = None
        if current is not None:
            sections[current] = sections.get(current, "") + " " + line
    return sections


def test_every_module_is_in_the_tour():
    sections = tour_sections()
    pkg = REPO / "avatar_service"
    missing = []
    for path in sorted(pkg.rglob("*.py")):
        rel = path.relative_to(pkg)
        if rel.parts[0] in ("api", "assets") or rel.name in ("__init__.py", "__main__.py"):
            continue
        package = rel.parts[0] if len(rel.parts) > 1 else ""
        if not re.search(rf"\b{re.escape(path.stem)}\b", sections.get(package, "")):
            missing.append(str(rel))
    assert not missing, f"README's architecture tour does not list {missing}"
    for package in sections:
        assert package == "" or (pkg / package).is_dir(), f"the tour lists {package}/, which does not exist"
