"""No import cycles between avatar_service's modules (issue #18): every `import` counts, including the
ones inside functions, since a lazy import only hides a cycle from the interpreter, not from a reader.
A module's imports of its own package's __init__ count as edges to that __init__."""
from __future__ import annotations

import ast
import pathlib

PKG = pathlib.Path(__file__).resolve().parents[1] / "avatar_service"


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PKG.rglob("*.py") if "api" not in p.relative_to(PKG).parts[:1]}
    graph: dict[str, set[str]] = {m: set() for m in files}
    for mod, path in files.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative import
                    pkg = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    pkg = pkg[: len(pkg) - node.level + 1]
                    base = ".".join(pkg + ([base] if base else []))
                targets = [f"{base}.{a.name}" for a in node.names] + [base]
            for t in targets:
                while t and t not in files:  # `from pkg import name` names a module or something in pkg
                    t = t.rpartition(".")[0]
                if t and t != mod:
                    graph[mod].add(t)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_graph_sees_imports():
    g = import_graph()
    assert "avatar_service.runtime.frame_encoder" in g["avatar_service.runtime.session"]
    assert "avatar_service.runtime.engine" in g["avatar_service.runtime.renderer"]
    assert "avatar_service.errors" in g["avatar_service.runtime.audio_stream"]


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_speech_does_not_reach_into_the_grpc_layer():
    g = import_graph()
    for mod, deps in g.items():
        if mod.startswith(("avatar_service.speech", "avatar_service.runtime", "avatar_service.model")):
            bad = sorted(d for d in deps if d.startswith("avatar_service.server"))
            assert not bad, f"{mod} imports {bad}"
