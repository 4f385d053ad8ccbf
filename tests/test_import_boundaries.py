"""Where code may reach: bench/ and the test kit never import tests/, and nothing but a script wrapper edits sys.path.

The benchmarks and the tests share ``omnisearch_testkit``, an installed package; a benchmark that imported
``tests`` would drag in test-only code and depend on the repository root being on the path. Code that edits
``sys.path`` works only from where its author ran it, so only the thin wrappers in scripts/ may, to reach
their package the way the operator runs them. Both are read with ``ast``, imports inside functions included.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ENV_DEFAULTS
from tests.test_no_outside_references import ROOT, project_files

PATH_METHODS = {"insert", "append", "extend", "remove", "pop", "clear", "__setitem__", "__delitem__"}


def python_files() -> list[Path]:
    return [path for path in project_files() if path.suffix == ".py"]


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def imports_of(tree: ast.AST) -> list[tuple[int, str]]:
    """Every absolute module an ``import`` names, with its line."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def _is_sys_path(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "path" and ast.unparse(node.value) == "sys"


def path_edits(tree: ast.AST) -> list[int]:
    """Lines that change ``sys.path``: its methods, assigning to it or a slice of it, ``from sys import path``."""
    lines: list[int] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in PATH_METHODS and _is_sys_path(node.func.value):
                lines.append(node.lineno)
        elif isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign | ast.Delete):
            targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else [node.target]
            for target in targets:
                if _is_sys_path(target) or (isinstance(target, ast.Subscript) and _is_sys_path(target.value)):
                    lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "sys" and any(a.name == "path" for a in node.names):
            lines.append(node.lineno)
    return sorted(lines)


def is_script_wrapper(path: Path) -> bool:
    return path.parent == ROOT / "scripts"


def test_the_scan_sees_every_form_of_path_edit() -> None:
    code = (
        "import sys\nsys.path.insert(0, 'x')\nsys.path[:0] = ['y']\nsys.path += ['z']\n"
        "def f():\n    sys.path.append('w')\nfrom sys import path\nprint(sys.path)\n"
    )
    assert path_edits(ast.parse(code)) == [2, 3, 4, 6, 7]


def test_bench_and_the_test_kit_never_import_tests() -> None:
    found = [
        f"{relative(path)}:{line}: import {module}"
        for path in python_files()
        if relative(path).startswith(("bench/", "omnisearch_testkit/"))
        for line, module in imports_of(ast.parse(path.read_text(encoding="utf-8")))
        if module == "tests" or module.startswith("tests.")
    ]
    assert not found, "\n".join(found)


def test_only_script_wrappers_edit_sys_path() -> None:
    editing = {
        relative(path): lines
        for path in python_files()
        if (lines := path_edits(ast.parse(path.read_text(encoding="utf-8"))))
    }
    outside = {name: lines for name, lines in editing.items() if not is_script_wrapper(ROOT / name)}
    assert not outside, f"sys.path edited outside scripts/ wrappers (file: lines): {outside}"


def test_importing_the_test_helpers_changes_neither_environment_nor_path() -> None:
    """tests.conftest and every test-kit module, imported outside pytest, leave os.environ and sys.path alone."""
    probe = (
        "import importlib, os, pkgutil, sys\n"
        "before = (dict(os.environ), list(sys.path))\n"
        "import omnisearch_testkit, tests.conftest\n"
        "for module in pkgutil.iter_modules(omnisearch_testkit.__path__, 'omnisearch_testkit.'):\n"
        "    importlib.import_module(module.name)\n"
        "after = (dict(os.environ), list(sys.path))\n"
        "print(sorted(set(after[0].items()) ^ set(before[0].items())), after[1] == before[1])\n"
    )
    env = {name: value for name, value in os.environ.items() if name not in ENV_DEFAULTS}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "layers" / "common"), str(ROOT)])
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[] True"
