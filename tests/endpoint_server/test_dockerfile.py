"""endpoint_server/Dockerfile (the DLC) and Dockerfile.cpu (slim, no torch): lint-clean, on their bases, exec-form
entry; the slim image's pins agree with the project's.

No Docker engine runs here: hadolint (``make lint`` runs it too) and these facts are what can be checked; the
images themselves are built and served in tests/containers/test_serving_images.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "endpoint_server" / "Dockerfile"
SLIM = ROOT / "endpoint_server" / "Dockerfile.cpu"
BOTH = pytest.mark.parametrize("dockerfile", [DOCKERFILE, SLIM], ids=["dlc", "slim"])
SLIM_REQUIREMENTS = ROOT / "endpoint_server" / "requirements-cpu.txt"
# What the torch-free CPU engine and our server import; what only the torch engine needs.
SLIM_RUNTIME = {"onnxruntime", "numpy", "pillow", "tokenizers", "ftfy", "regex", "uvicorn", "starlette", "httptools",
                "uvloop"}  # fmt: skip
TORCH_ONLY = {"torch", "torchvision", "open-clip-torch", "timm"}


def _instructions(dockerfile: Path = DOCKERFILE) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", dockerfile.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


@BOTH
def test_hadolint_finds_nothing(dockerfile: Path) -> None:
    hadolint = shutil.which("hadolint") or str(ROOT / ".venv" / "bin" / "hadolint")
    result = subprocess.run([hadolint, str(dockerfile)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_base_image_is_the_dlc_that_requirements_txt_names() -> None:
    named = re.search(r"DLC: (\S+)", (ROOT / "model_code" / "code" / "requirements.txt").read_text()).group(1)
    args = dict(value.split("=", 1) for op, value in _instructions() if op == "ARG" and "=" in value)
    assert args["BASE_IMAGE"] == named
    assert ":2.6.0-gpu-py312-" in named
    assert ("FROM", "${BASE_IMAGE}") in _instructions()


def test_the_slim_base_is_python_312_slim() -> None:
    args = dict(value.split("=", 1) for op, value in _instructions(SLIM) if op == "ARG" and "=" in value)
    assert args["BASE_IMAGE"] == "python:3.12-slim"
    assert ("FROM", "${BASE_IMAGE}") in _instructions(SLIM)


@BOTH
def test_entrypoint_is_exec_form_and_serve_is_the_default_command(dockerfile: Path) -> None:
    found = dict(_instructions(dockerfile))
    assert json.loads(found["ENTRYPOINT"]) == ["python", "-m", "endpoint_server"]
    assert json.loads(found["CMD"]) == ["serve"]
    assert found["EXPOSE"] == "8080"


def test_both_images_run_the_code_with_the_same_environment_and_context() -> None:
    def env(dockerfile: Path) -> list[str]:
        return [value for op, value in _instructions(dockerfile) if op in ("ENV", "WORKDIR")]

    def copied(dockerfile: Path) -> list[str]:
        return [value for op, value in _instructions(dockerfile) if op == "COPY" and "requirements" not in value]

    assert env(SLIM) == env(DOCKERFILE)
    assert "PYTHONPATH=/opt/omnisearch" in env(SLIM)[0]
    assert copied(SLIM) == copied(DOCKERFILE)
    ignored = [Path(f"{dockerfile}.dockerignore").read_text().splitlines() for dockerfile in (DOCKERFILE, SLIM)]
    assert [line for line in ignored[1] if not line.startswith("#")] == [
        line for line in ignored[0] if not line.startswith("#")
    ]


def test_the_slim_image_installs_its_pins_and_refuses_torch_at_build() -> None:
    runs = " ".join(value for op, value in _instructions(SLIM) if op == "RUN")
    assert "pip install --no-cache-dir -r requirements-cpu.txt" in runs
    assert "find_spec('torch') is None" in runs
    assert ("COPY", "endpoint_server/requirements-cpu.txt requirements-cpu.txt") in _instructions(SLIM)


def _pins(path: Path) -> list[Requirement]:
    lines = [line.strip() for line in path.read_text().splitlines()]
    return [Requirement(line) for line in lines if line and not line.startswith("#")]


def test_the_slim_requirements_pin_the_torch_free_runtime_and_nothing_of_torch() -> None:
    pins = _pins(SLIM_REQUIREMENTS)
    names = [canonicalize_name(pin.name) for pin in pins]
    assert all(len(pin.specifier) == 1 and next(iter(pin.specifier)).operator == "==" for pin in pins), pins
    assert set(names) == SLIM_RUNTIME and len(names) == len(set(names))
    assert not set(names) & TORCH_ONLY


def test_the_slim_pins_agree_with_the_model_code_server_and_project_pins() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    others = [Requirement(line) for extra in project.values() for line in extra if "omnisearch-embed" not in line]
    others += _pins(ROOT / "model_code" / "code" / "requirements.txt")
    others += _pins(ROOT / "endpoint_server" / "requirements.txt")
    for pin in _pins(SLIM_REQUIREMENTS):
        version = next(iter(pin.specifier)).version
        for other in others:
            if canonicalize_name(other.name) == canonicalize_name(pin.name):
                assert other.specifier.contains(version), f"{pin} against {other}"


def test_server_requirements_match_the_project_pins() -> None:
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["local"]
    lines = (ROOT / "endpoint_server" / "requirements.txt").read_text().splitlines()
    required = [line for line in lines if line and not line.startswith("#")]
    assert required and all(line in pins for line in required), (required, pins)


def _deploy_steps() -> dict[str, dict]:
    import yaml

    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "deploy.yml").read_text())
    job = workflow["jobs"]["deploy"]
    assert job["permissions"]["id-token"] == "write"  # OIDC: no stored keys
    return {step.get("name", step.get("uses")): step for step in job["steps"]}


def test_the_deploy_workflow_builds_pushes_and_deploys_both_images_of_this_commit() -> None:
    steps = _deploy_steps()
    names = list(steps)
    assert names.index("aws-actions/configure-aws-credentials@v4") < names.index("build and push the serving container")
    assert names.index("build and push the serving container") < names.index("sam deploy")
    build = steps["build and push the serving container"]["run"]
    assert '-f "$dockerfile"' in build and "docker push" in build and "docker build" in build
    assert "--image-tag-mutability IMMUTABLE" in build
    pushed = re.findall(r"^\s*push (\S+) (endpoint_server/\S+)(.*)$", build, re.M)
    assert [(repository, dockerfile) for repository, dockerfile, _ in pushed] == [
        ('"$IMAGE_REPOSITORY"', "endpoint_server/Dockerfile"),
        ('"$IMAGE_REPOSITORY-cpu"', "endpoint_server/Dockerfile.cpu"),
    ]
    assert "BASE_IMAGE=" in pushed[0][2] and not pushed[1][2].strip()  # the slim image keeps python:3.12-slim


def test_the_deploy_overrides_pass_the_image_tag() -> None:
    script = _deploy_steps()["sam deploy"]["run"]
    steps_python = script.split("<<'PY'\n", 1)[1].split("\nPY\n", 1)[0]
    env = {"CONFIG_ENV": "dev", "IMAGE_TAG": "3f2c1e9", "MODEL_DATA_URL": "", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(steps_python)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    overrides = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert overrides["EndpointServerImageTag"] == "3f2c1e9" and overrides["ModelDataUrl"].startswith("s3://")
