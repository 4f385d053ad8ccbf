"""endpoint_server/Dockerfile: lint-clean, on the container version the model code is written for, exec-form entry.

No Docker engine runs here: hadolint (``make lint`` runs it too) and these facts are what can be checked.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
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
