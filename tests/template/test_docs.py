"""The deployment docs stay true to the template and the commands they name."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from omnisearch_ops.deploy_cli import LEGACY_FLAGS

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "SAGEMAKER_DEPLOYMENT_GUIDE.md"
QUICKREF = ROOT / "docs" / "SAGEMAKER_QUICKREF.md"
DOCS = (GUIDE, QUICKREF)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_cost_table_figures(doc: Path) -> None:
    text = doc.read_text()
    for figure in ("$583", "$77", "$2,332", "$3.50"):
        assert figure in text, figure


def test_quickref_lists_every_parameter_and_output(template: dict) -> None:
    text = QUICKREF.read_text()
    for name in [*template["Parameters"], *template["Outputs"]]:
        assert f"`{name}`" in text, name


def test_quickref_parameter_defaults_match(template: dict) -> None:
    text = QUICKREF.read_text()
    assert "| `InstanceType` | `ml.g4dn.xlarge` |" in text
    assert template["Parameters"]["InstanceType"]["Default"] == "ml.g4dn.xlarge"
    target = template["Parameters"]["TargetInvocationsPerInstance"]["Default"]
    assert f"| `TargetInvocationsPerInstance` | {target} |" in text


def test_the_auth_choice_is_documented_as_built(stack: Any) -> None:
    guide = GUIDE.read_text()
    assert stack.props("EmbedApi")["ApiKeySourceType"] == "AUTHORIZER"
    assert "`ApiKeySourceType: AUTHORIZER`" in guide
    assert "`ReauthorizeEvery: 0`" in guide
    assert "Authorization: Bearer" in QUICKREF.read_text()


def test_quickref_sizes_match_the_functions(stack: Any) -> None:
    rows = re.findall(r"^\| (\w+Function) \| (\d+) MB \| (\d+) s \|", QUICKREF.read_text(), flags=re.M)
    assert {name for name, _, _ in rows} == {"EmbedFunction", "MetricsFunction", "AuthorizerFunction"}
    for name, memory, timeout in rows:
        props = stack.props(name)
        assert (props["MemorySize"], props["Timeout"]) == (int(memory), int(timeout)), name


def test_quickref_routes_match_the_api(stack: Any) -> None:
    text = QUICKREF.read_text()
    for path in stack.resources["EmbedApi"]["Properties"]["Body"]["paths"]:
        assert re.search(rf"`(?:GET |POST )?{re.escape(path)}[`?]", text), path


def command_source(module: str) -> str:
    """Where a command's options are declared: its own module and the shared AWS options."""
    return (ROOT / (module.replace(".", "/") + ".py")).read_text() + (ROOT / "omnisearch_ops" / "aws.py").read_text()


def wrapped_module(script: str) -> str:
    """The module whose ``main`` a ``scripts/*.py`` wrapper runs."""
    named = re.search(r"^from (\S+) import main\b", (ROOT / "scripts" / script).read_text(), flags=re.M)
    assert named, f"scripts/{script} is not a wrapper over a package's main"
    return named.group(1)


def assert_flags_declared(doc: Path, name: str, module: str, args: str) -> None:
    source = command_source(module)
    for flag in re.findall(r"--[\w-]+", args):
        if module == "omnisearch_ops.deploy_cli" and flag in LEGACY_FLAGS:
            continue  # the old action flags become subcommands (tests/ops/test_deploy_cli.py)
        assert f'"{flag}"' in source, f"{doc.name}: {name} has no {flag}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_script_flag_the_docs_use_exists(doc: Path) -> None:
    uses = re.findall(r"scripts/(\w+\.py)((?: (?:--[\w-]+|[^\s`|-][^\s`|]*))+)", doc.read_text())
    assert uses
    for script, args in uses:
        assert_flags_declared(doc, script, wrapped_module(script), args)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_command_flag_the_docs_use_exists(doc: Path) -> None:
    commands = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    uses = re.findall(r"\b(omnisearch-[\w-]+)((?: (?:--[\w-]+|[^\s`|-][^\s`|]*))*)", doc.read_text())
    assert any(name in commands for name, _ in uses)
    for name, args in uses:
        if name in commands:
            assert_flags_declared(doc, name, commands[name].split(":")[0], args)


def test_quickref_names_every_alarm(stack: Any) -> None:
    text = QUICKREF.read_text()
    for alarm in stack.of_type("AWS::CloudWatch::Alarm"):
        suffix = stack.props(alarm)["AlarmName"].removeprefix("omnisearch-embed-dev")
        assert f"`{suffix}`" in text or f"`omnisearch-embed-<Stage>{suffix}`" in text, suffix
