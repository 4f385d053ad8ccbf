"""endpoint_server/Dockerfile: lint-clean, on the container version the model code is written for, exec-form entry.

No Docker engine runs here: hadolint (``make lint`` runs it too) and these facts are what can be checked.
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

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "endpoint_server" / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint") or str(ROOT / ".venv" / "bin" / "hadolint")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_base_image_is_the_dlc_that_requirements_txt_names() -> None:
    named = re.search(r"DLC: (\S+)", (ROOT / "model_code" / "code" / "requirements.txt").read_text()).group(1)
    args = dict(value.split("=", 1) for op, value in _instructions() if op == "ARG" and "=" in value)
    assert args["BASE_IMAGE"] == named
    assert ":2.6.0-gpu-py312-" in named
    assert ("FROM", "${BASE_IMAGE}") in _instructions()


def test_entrypoint_is_exec_form_and_serve_is_the_default_command() -> None:
    found = dict(_instructions())
    assert json.loads(found["ENTRYPOINT"]) == ["python", "-m", "endpoint_server"]
    assert json.loads(found["CMD"]) == ["serve"]
    assert found["EXPOSE"] == "8080"


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


def test_the_deploy_workflow_builds_pushes_and_deploys_the_image_of_this_commit() -> None:
    steps = _deploy_steps()
    names = list(steps)
    assert names.index("aws-actions/configure-aws-credentials@v4") < names.index("build and push the serving container")
    assert names.index("build and push the serving container") < names.index("sam deploy")
    build = steps["build and push the serving container"]["run"]
    assert "docker build -f endpoint_server/Dockerfile" in build and "docker push" in build
    assert "--image-tag-mutability IMMUTABLE" in build


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
