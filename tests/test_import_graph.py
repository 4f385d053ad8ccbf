"""No import cycles among the project's own modules, counting imports inside functions too.

A cycle hidden in a function body (``cli`` importing ``server`` in ``main`` while ``server`` imported
``cli`` in a helper) still ties two modules together; this reads every ``import`` with ``ast``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    "omnisearch_embed": ROOT / "layers" / "common",
    "local_server": ROOT,
    "model_code": ROOT,
    "omnisearch_ops": ROOT,
    "omnisearch_corpus": ROOT,
    "omnisearch_testkit": ROOT,
}


def module_name(path: Path, base: Path) -> str:
    parts = list(path.relative_to(base).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def absolute(name: str, path: Path, node: ast.ImportFrom) -> str:
    """The module a ``from ... import`` names; relative ones (``from . import x``) resolved against ``name``."""
    if node.level == 0:
        return node.module or ""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p, base): p for pkg, base in PACKAGES.items() for p in (base / pkg).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and (node.module or node.level):
                module = absolute(name, path, node)
                targets.add(module)
                targets.update(f"{module}.{alias.name}" for alias in node.names)
        # a package's __init__ is not an edge of its own submodules' imports of each other
        graph[name] = {t for t in targets if t in files and t != name and not name.startswith(f"{t}.")}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_graph_sees_function_level_imports() -> None:
    graph = import_graph()
    assert "local_server.server" in graph["local_server.cli"]  # imported inside main()


def test_no_import_cycles() -> None:
    assert find_cycle(import_graph()) is None, " -> ".join(find_cycle(import_graph()) or [])
