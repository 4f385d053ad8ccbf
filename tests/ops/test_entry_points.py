"""The commands pyproject installs resolve to the packages' mains, and scripts/ holds only thin wrappers."""

from __future__ import annotations

import ast
import importlib
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
WRAPPERS = {
    "deploy_sagemaker_endpoint.py": "omnisearch-deploy",
    "monitor_sagemaker_endpoint.py": "omnisearch-monitor",
    "package_model.py": "omnisearch-package-model",
    "embed_corpus.py": "omnisearch-embed-corpus",
}


def test_the_four_commands_are_declared() -> None:
    assert set(COMMANDS) == set(WRAPPERS.values())


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_command_target_answers_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    module, function = COMMANDS[command].split(":")
    main = getattr(importlib.import_module(module), function)
    with pytest.raises(SystemExit) as stopped:
        main(["--help"])
    assert stopped.value.code == 0
    assert f"usage: {command}" in capsys.readouterr().out


@pytest.mark.parametrize("script", sorted(WRAPPERS))
def test_each_script_is_a_thin_wrapper_over_its_command(script: str) -> None:
    tree = ast.parse((ROOT / "scripts" / script).read_text())
    imported = [node for node in tree.body if isinstance(node, ast.ImportFrom) and node.module != "pathlib"]
    assert [(node.module, [a.name for a in node.names]) for node in imported] == [
        (COMMANDS[WRAPPERS[script]].split(":")[0], ["main"])
    ]
    assert ast.unparse(tree.body[-1]) == "raise SystemExit(main())"
