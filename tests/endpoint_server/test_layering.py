"""endpoint_server ships in its image with model_code only: it imports nothing else from the repository,
and local_server's batching is endpoint_server's, not a second batcher."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REPOSITORY_PACKAGES = {
    "omnisearch_embed",
    "local_server",
    "functions",
    "scripts",
    "omnisearch_ops",
    "omnisearch_corpus",
    "model_code",
    "tests",
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    names |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 0}
    return {name.split(".")[0] for name in names}


def test_endpoint_server_imports_no_other_repository_package() -> None:
    for path in (ROOT / "endpoint_server").glob("*.py"):
        assert not _imports(path) & (REPOSITORY_PACKAGES - {"model_code"}), path.name


def test_there_is_one_batcher() -> None:
    defined = [
        path.relative_to(ROOT).as_posix()
        for folder in ("endpoint_server", "local_server", "layers/common/omnisearch_embed")
        for path in (ROOT / folder).rglob("*.py")
        if "class DynamicBatcher" in path.read_text()
    ]
    assert defined == ["endpoint_server/batching.py"]
    assert "endpoint_server.batching" in (ROOT / "local_server" / "batched_backend.py").read_text()
