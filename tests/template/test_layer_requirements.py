"""The Lambda layer installs what the core imports: layers/common/requirements.txt, the ``lambda`` extra, the code."""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "layers" / "common" / "omnisearch_embed"
RUNTIME = {"boto3", "botocore"}  # the Lambda Python runtime has them; the layer pins its own
DISTRIBUTION = {
    "PIL": "pillow",
    "aws_lambda_powertools": "aws-lambda-powertools",
    "python_multipart": "python-multipart",
    "pydantic_core": "pydantic",  # installed with pydantic, which pins it
}


def name_of(requirement: str) -> str:
    for stop in "[=<>!~ ;":
        requirement = requirement.split(stop, 1)[0]
    return requirement.strip().lower()


def layer_requirements() -> dict[str, str]:
    lines = (ROOT / "layers" / "common" / "requirements.txt").read_text().splitlines()
    return {name_of(line): line.strip() for line in lines if line.strip() and not line.startswith("#")}


def test_the_layer_pins_what_the_lambda_extra_pins() -> None:
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["lambda"]
    assert {name_of(r): r for r in extra} == layer_requirements()


def test_the_layer_pins_boto3_and_botocore_together() -> None:
    """/opt/python shadows the runtime's boto3: the layer's botocore must be the one its boto3 was released with."""
    pins = layer_requirements()
    boto3_version = pins["boto3"].split("==")[1]
    assert pins["botocore"] == f"botocore=={boto3_version}", pins


def test_every_third_party_import_of_the_core_is_in_the_layer() -> None:
    imported: set[str] = set()
    for path in CORE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"omnisearch_embed", "__future__"} - RUNTIME
    assert "python_multipart" in third_party
    assert {DISTRIBUTION.get(module, module) for module in third_party} <= set(layer_requirements())


def _core_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in names if name.split(".")[0] == "omnisearch_embed"}


def test_the_layer_carries_only_what_the_functions_import() -> None:
    """Every core module is reached from a Lambda function's imports; operator-only code lives in omnisearch_ops."""
    modules = {}
    for path in CORE.rglob("*.py"):
        parts = path.relative_to(CORE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    reached: set[str] = set()
    todo = [name for path in (ROOT / "functions").rglob("*.py") for name in _core_imports(path)]
    while todo:
        name = todo.pop()
        if name in reached or name not in modules:
            continue
        reached.add(name)
        todo += _core_imports(modules[name])
        todo += [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)]  # its packages' __init__
    assert "omnisearch_embed.settings" in reached
    assert set(modules) - reached == set()
