"""functions/model/Dockerfile without a Docker engine: lint-clean, Python 3.13 as the other functions, every package
pinned (and the serving images' pins kept), nothing of torch, and a build context that holds what it copies."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "functions" / "model" / "Dockerfile"
REQUIREMENTS = ROOT / "functions" / "model" / "requirements.txt"
# What the torch-free engine imports, and what those need (installed with --no-deps, so named here).
RUNTIME = {"onnxruntime", "flatbuffers", "packaging", "protobuf", "numpy", "pillow", "tokenizers", "ftfy", "wcwidth",
           "regex"}  # fmt: skip
NEVER = {"torch", "torchvision", "open-clip-torch", "timm", "huggingface-hub", "boto3", "aws-lambda-powertools"}


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def pins(path: Path) -> list[Requirement]:
    return [Requirement(line) for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint") or str(ROOT / ".venv" / "bin" / "hadolint")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_base_is_lambdas_python_313_and_the_handler_is_the_model_functions() -> None:
    args = dict(value.split("=", 1) for op, value in instructions() if op == "ARG" and "=" in value)
    assert args["BASE_IMAGE"] == "public.ecr.aws/lambda/python:3.13"
    assert ("FROM", "${BASE_IMAGE}") in instructions()
    assert dict(instructions())["CMD"] == '["app.lambda_handler"]'
    template = (ROOT / "template.yaml").read_text()
    assert "Runtime: python3.13" in template  # the zip functions' runtime: one Python for every function


def test_every_package_is_pinned_and_none_is_torch() -> None:
    found = pins(REQUIREMENTS)
    names = [canonicalize_name(pin.name) for pin in found]
    assert all(len(pin.specifier) == 1 and next(iter(pin.specifier)).operator == "==" for pin in found), found
    assert set(names) == RUNTIME and len(names) == len(set(names))
    assert not set(names) & NEVER
    runs = " ".join(value for op, value in instructions() if op == "RUN")
    assert "--no-deps" in runs and "--only-binary=:all:" in runs


def test_the_pins_are_the_tested_ones_and_agree_with_the_serving_images() -> None:
    others = pins(ROOT / "model_code" / "code" / "requirements.txt")
    slim = ROOT / "endpoint_server" / "requirements-cpu.txt"
    if slim.is_file():
        others += pins(slim)
    for pin in pins(REQUIREMENTS):
        version = next(iter(pin.specifier)).version
        shared = [other for other in others if canonicalize_name(other.name) == canonicalize_name(pin.name)]
        for other in shared:
            assert other.specifier.contains(version), f"{pin} against {other}"
        if not shared:  # the version these tests run with
            assert metadata.version(pin.name) == version, pin


def test_the_build_context_lets_in_what_the_dockerfile_copies() -> None:
    rules = [line.strip() for line in Path(f"{DOCKERFILE}.dockerignore").read_text().splitlines()]
    allowed = [rule[1:].rstrip("/") for rule in rules if rule.startswith("!")]
    assert "*" in rules  # nothing goes in that is not named
    args = dict(value.split("=", 1) for op, value in instructions() if op == "ARG" and "=" in value)
    sources = []
    for op, value in instructions():
        if op == "COPY" and not value.startswith("--from"):
            sources += value.replace("${MODEL_DIR}", args["MODEL_DIR"]).split()[:-1]
    assert sources
    for source in sources:
        path = source.rstrip("/")
        assert any(path == a or path.startswith(f"{a}/") or fnmatch.fnmatch(path, f"{a}/*") for a in allowed), source
