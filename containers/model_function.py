"""ModelFunction's image for local runs, built by the real ``sam build`` from functions/model/Dockerfile.

``sam build`` sends the repository root (``DockerContext: .``, kept small by the root .dockerignore) through
docker-py, whose builds get no ``--network host``: pip inside the build cannot reach an index here. So the
Dockerfile's BUILDER_IMAGE is the Lambda python3.13 equivalent with pip and, already inside, the wheels of
functions/model/requirements.txt (downloaded on this machine's network), pip told to use only those. BASE_IMAGE
is the Lambda equivalent itself. Both go to ``sam build`` as DockerBuildArgs through a copy of the template
(:func:`local_template`); the deployed template keeps AWS's public.ecr.aws/lambda/python:3.13.

The archive's model files go where the Dockerfile's MODEL_DIR default reads them: build/model-function.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from samtranslator.yaml_helper import yaml_parse

from containers.base_images import HOST_CA_BUNDLE, lambda_runtime
from containers.engine import ContainerError, docker
from containers.rootfs import build_once, recipe_hash

if TYPE_CHECKING:
    from containers.sam import SamCli

__all__ = [
    "MODEL_DIR",
    "REQUIREMENTS",
    "build_with_model_function",
    "builder_image",
    "image_size",
    "local_template",
    "stage_model",
]

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "functions" / "model" / "requirements.txt"
MODEL_DIR = ROOT / "build" / "model-function"  # the Dockerfile's MODEL_DIR default, let in by .dockerignore
FUNCTION = "ModelFunction"
PIP = "pip==26.2.1"
_PLATFORM = {"x86_64": "x86_64", "arm64": "aarch64"}
# Lambda's python3.13 runs on Amazon Linux 2023 (glibc 2.34): wheels up to manylinux_2_34 load there. pip takes
# the tags given literally, so each one the pins publish is named.
_MANYLINUX = ("manylinux2014", "manylinux_2_17", "manylinux_2_27", "manylinux_2_28", "manylinux_2_34")
_BUILDER_DOCKERFILE = """\
FROM {base}
COPY pip/ /var/lang/lib/python3.13/site-packages/
COPY wheels/ /opt/wheels/
ENV PIP_NO_INDEX=1 PIP_FIND_LINKS=/opt/wheels PIP_CERT=/etc/ssl/certs/ca-certificates.crt \\
    PIP_DISABLE_PIP_VERSION_CHECK=1
LABEL {label}
"""


def builder_tag(arch: str) -> str:
    return f"omnisearch-equivalent/lambda-python3.13-builder:{arch}"


def builder_image(arch: str = "x86_64", log: Callable[[str], None] = print) -> str:
    """The Lambda equivalent with pip and the model function's wheels, for ``arch``; returns its tag.

    Rebuilt only when the base image, pip or requirements.txt changed (the recipe label).
    """
    base = lambda_runtime(arch, log)
    base_id = docker("image", "inspect", "--format", "{{.Id}}", base).strip()
    tag = builder_tag(arch)
    recipe = recipe_hash("model-function-builder", arch, base_id, PIP, REQUIREMENTS.read_text(), _BUILDER_DOCKERFILE)
    build_once(tag, recipe, lambda: _build_builder(tag, recipe, base, arch), log)
    return tag


def _build_builder(tag: str, recipe: str, base: str, arch: str) -> None:
    from containers.rootfs import RECIPE_LABEL

    platform = [f"--platform={tag}_{_PLATFORM[arch]}" for tag in _MANYLINUX]
    with tempfile.TemporaryDirectory(prefix="omnisearch-model-builder-") as work:
        context = Path(work)
        _pip(["install", "--target", str(context / "pip"), "--no-deps", "--only-binary=:all:", PIP])
        _pip(["download", "--dest", str(context / "wheels"), "--no-deps", "--only-binary=:all:",
              "--python-version=3.13", *platform, "-r", str(REQUIREMENTS)])  # fmt: skip
        (context / "Dockerfile").write_text(_BUILDER_DOCKERFILE.format(base=base, label=f"{RECIPE_LABEL}={recipe}"))
        docker("build", "--force-rm", "--platform", f"linux/{'amd64' if arch == 'x86_64' else 'arm64'}",
               "-t", tag, str(context), timeout=600)  # fmt: skip


def _pip(args: list[str]) -> None:
    command = [sys.executable, "-m", "pip", *args, "-q", "--disable-pip-version-check", "--cert", str(HOST_CA_BUNDLE)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [line for line in (done.stdout + done.stderr).splitlines() if "is ignored" not in line]
        raise ContainerError(f"pip {args[0]} failed ({done.returncode}):\n" + "\n".join(lines)[-2000:])


def stage_model(unpacked: Path, target: Path = MODEL_DIR) -> Path:
    """An unpacked archive's ONNX and JSON files (all the Dockerfile copies) into ``target``, replacing it."""
    files = sorted([*unpacked.glob("*.onnx"), *unpacked.glob("*.json")])
    if not any(path.name == "clip_onnx.json" for path in files):
        raise ContainerError(f"{unpacked} holds no exported model (clip_onnx.json): package it with its ONNX towers")
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for path in files:
        shutil.copy2(path, target / path.name)
    return target


def local_template(work: Path, arch: str, base_image: str, builder: str, *, check_model: bool = True) -> Path:
    """template.yaml with ModelFunction's build args naming the local images; ``sam build --base-dir`` the root.

    ``DockerTag`` carries the architecture, so an x86_64 and an arm64 build keep apart images.
    """
    template = yaml_parse((ROOT / "template.yaml").read_text())  # short-form intrinsics as their long form
    metadata = template["Resources"][FUNCTION]["Metadata"]
    metadata["DockerTag"] = f"local-{arch}"
    metadata["DockerBuildArgs"] = {**metadata.get("DockerBuildArgs", {}), "BASE_IMAGE": base_image,
                                   "BUILDER_IMAGE": builder, "CHECK_MODEL": "1" if check_model else "0"}  # fmt: skip
    path = work / "template.yaml"
    path.write_text(yaml.safe_dump(template, sort_keys=False, width=1000))
    return path


def image_size(tag: str) -> int:
    """The image's size as ``docker image inspect`` gives it (uncompressed, what Lambda's 10 GB limit counts)."""
    return int(docker("image", "inspect", "--format", "{{.Size}}", tag).strip())


def build_with_model_function(venv: Path, base_image: str, model_dir: Path, work: Path, name: str,
                              **parameters: str) -> SamCli:  # fmt: skip
    """``sam build`` (x86_64) of the whole template with ModelFunction holding ``model_dir``'s files, into
    .aws-sam/``name``; ``parameters`` are the template's (EndpointKind, FallbackMode, ClipModel...)."""
    from containers.sam import SamCli

    stage_model(model_dir)
    template = local_template(work, "x86_64", base_image, builder_image("x86_64"))
    cli = SamCli(venv, "x86_64", base_image, template=template, images=True, build_dir=ROOT / ".aws-sam" / name,
                 **parameters)  # fmt: skip
    cli.build()
    return cli
