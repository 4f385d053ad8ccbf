"""Our serving images for the deploy command: this account's ECR repositories, docker build, size check and push.

template.yaml runs two images of ours, both tagged ``EndpointServerImageTag``:

- ``GPU``: ``omnisearch-embed-endpoint``, the model's image when ServingContainer is endpoint-server (its
  default), built from endpoint_server/Dockerfile on the DLC that model_code/code/requirements.txt names.
- ``CPU``: ``omnisearch-embed-endpoint-cpu``, the serverless model's image when ServerlessContainer is
  endpoint-server-cpu (its default), built from endpoint_server/Dockerfile.cpu on python:3.12-slim (ONNX
  Runtime, no torch). Serverless Inference takes images of at most 10 GB, so its size is checked.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from omnisearch_ops.console import EXIT_USAGE, fail
from omnisearch_ops.paths import ROOT
from omnisearch_ops.sam import run_command

DLC_ACCOUNT = "763104351884"
PLATFORM = "linux/amd64"  # SageMaker's hosts, serverless ones included, run x86_64
# SageMaker refuses a bigger serverless image at endpoint creation ("greater than supported size 10737418240").
SERVERLESS_IMAGE_LIMIT = 10 * 1024**3


@dataclass(frozen=True)
class ServingImage:
    """One image of ours: where it is pushed, what builds it, and the size its platform allows (None: no cap)."""

    repository: str
    dockerfile: str
    on_dlc: bool  # built on the region's DLC, which needs a docker login to AWS's registry
    size_limit: int | None = None

    @property
    def dockerignore(self) -> str:
        """``docker build -f <dockerfile>`` reads ``<dockerfile>.dockerignore`` for its context."""
        return f"{self.dockerfile}.dockerignore"

    def uri(self, account: str, region: str, tag: str) -> str:
        return f"{registry(account, region)}/{self.repository}:{tag}"


CPU = ServingImage(
    "omnisearch-embed-endpoint-cpu", "endpoint_server/Dockerfile.cpu", on_dlc=False, size_limit=SERVERLESS_IMAGE_LIMIT
)
GPU = ServingImage("omnisearch-embed-endpoint", "endpoint_server/Dockerfile", on_dlc=True)
IMAGES = (CPU, GPU)  # the capped one first: a refused size stops the deploy before the long GPU build
# template.yaml's defaults of the parameters that choose the images (tests/template checks them).
TEMPLATE_DEFAULTS = {
    "ServingContainer": "endpoint-server",
    "ServerlessContainer": "endpoint-server-cpu",
    "EndpointKind": "realtime",
    "FallbackMode": "none",
}


def images_for(parameters: Mapping[str, str]) -> tuple[ServingImage, ...]:
    """The images of ours the stack runs with these parameters (template.yaml's defaults for those not given).

    The model (ServingContainer) exists on every stack; the serverless model only with EndpointKind or
    FallbackMode serverless, as template.yaml's NeedsServerlessModel says.
    """
    value = {**TEMPLATE_DEFAULTS, **parameters}
    serverless = value["EndpointKind"] == "serverless" or value["FallbackMode"] == "serverless"
    wanted = {
        CPU: serverless and value["ServerlessContainer"] == "endpoint-server-cpu",
        GPU: value["ServingContainer"] == "endpoint-server",
    }
    return tuple(image for image in IMAGES if wanted[image])


def docker() -> str:
    """DOCKER_CLI, else docker on PATH (tests record the calls with a script of their own)."""
    return os.environ.get("DOCKER_CLI") or "docker"


def registry(account: str, region: str) -> str:
    return f"{account}.dkr.ecr.{region}.amazonaws.com"


def base_image(region: str) -> str:
    """The ``# DLC:`` image of model_code/code/requirements.txt, moved to ``region``'s registry."""
    text = (ROOT / "model_code" / "code" / "requirements.txt").read_text()
    named = re.search(r"^# DLC: (\S+)", text, re.MULTILINE)
    if named is None:
        raise ValueError("model_code/code/requirements.txt has no '# DLC: <image>' line")
    return re.sub(r"\.dkr\.ecr\.[a-z0-9-]+\.", f".dkr.ecr.{region}.", named.group(1), count=1)


def context_files(root: Path = ROOT, dockerignore: str = GPU.dockerignore) -> list[Path]:
    """The files ``docker build`` sends: what the dockerignore lets in (``!path``) less ``**/name``."""
    rules = [line.strip() for line in (root / dockerignore).read_text().splitlines()]
    rules = [rule for rule in rules if rule and not rule.startswith("#")]
    if not rules or rules[0] != "*":
        raise ValueError(f"{dockerignore} must start with '*' (only what it lets in is hashed)")
    skipped = {rule.removeprefix("**/") for rule in rules if rule.startswith("**/")}
    files = []
    for rule in rules:
        if rule.startswith("!"):
            top = root / rule[1:].rstrip("/")
            found = [top] if top.is_file() else [p for p in top.rglob("*") if p.is_file() or p.is_symlink()]
            files += [p for p in found if not skipped & set(p.relative_to(root).parts)]
    return sorted(set(files))


def content_digest(root: Path = ROOT) -> str:
    """12 hex digits of sha256 over every image's build context: paths, executable bits and bytes.

    One tag names both images, so it covers what either build sends (an image whose dockerignore this tree
    lacks cannot be built from it).
    """
    digest = hashlib.sha256()
    ignores = [image.dockerignore for image in IMAGES if (root / image.dockerignore).is_file()]
    for path in sorted({path for ignore in ignores for path in context_files(root, ignore)}):
        data = os.readlink(path).encode() if path.is_symlink() else path.read_bytes()
        executable = b"x" if path.lstat().st_mode & 0o111 else b"-"
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + executable)
        digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()[:12]


def default_tag(root: Path = ROOT) -> str:
    """The commit being deployed, so each deploy names a new image (the repositories' tags are immutable).

    Uncommitted work, or a tree without git, is tagged by its build contexts' content instead: a tag that
    exists is not pushed again, so a tag must never stand for two different contexts.
    """
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return f"content-{content_digest(root)}"
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True).stdout
    commit = found.stdout.strip()
    return f"{commit}-dirty-{content_digest(root)}" if dirty.strip() else commit


def commands(image: ServingImage, account: str, region: str, tag: str) -> list[list[str]]:
    """docker build (from the repository root) and docker push of ``image``."""
    uri = image.uri(account, region, tag)
    build = [docker(), "build", "-f", image.dockerfile, "--platform", PLATFORM]
    if image.on_dlc:
        build += ["--build-arg", f"BASE_IMAGE={base_image(region)}"]
    return [[*build, "-t", uri, "."], [docker(), "push", uri]]


def size_step(image: ServingImage) -> str | None:
    """What the deploy checks between ``image``'s build and push, in words (None: nothing)."""
    if image.size_limit is None:
        return None
    return f"refuse {image.repository} if docker image inspect says over {image.size_limit} bytes (the serverless cap)"


def check_size(image: ServingImage, uri: str, size: int, measured: str) -> None:
    """Refuse (exit 2) an image over its platform's limit: the endpoint would never be created."""
    if image.size_limit is not None and size > image.size_limit:
        fail(
            f"{uri} is {size} bytes ({measured}), over Serverless Inference's limit of {image.size_limit} bytes"
            " (10 GB): the serverless endpoint would not be created. Make the image smaller, or deploy with"
            " --serverless-container toolkit",
            EXIT_USAGE,
        )


def local_size(uri: str) -> int:
    """The built image's size (``docker image inspect``: uncompressed, as large as it gets)."""
    found = subprocess.run(
        [docker(), "image", "inspect", "--format", "{{.Size}}", uri], capture_output=True, text=True, check=False
    )
    if found.returncode != 0 or not found.stdout.strip().isdigit():
        fail(f"docker image inspect {uri} failed: {found.stderr.strip() or found.stdout.strip()}")
    return int(found.stdout.strip())


def ensure_repository(ecr: Any, repository: str) -> None:
    """Create the repository on first use: immutable tags, scanned on push."""
    try:
        ecr.describe_repositories(repositoryNames=[repository])
    except ClientError as e:
        if e.response["Error"]["Code"] != "RepositoryNotFoundException":
            raise
        ecr.create_repository(
            repositoryName=repository,
            imageTagMutability="IMMUTABLE",
            imageScanningConfiguration={"scanOnPush": True},
        )


def pushed(ecr: Any, repository: str, tag: str) -> dict[str, Any] | None:
    """ECR's imageDetails of ``repository:tag``, or None when it is not there."""
    try:
        details = ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])["imageDetails"]
    except ClientError as e:
        if e.response["Error"]["Code"] in ("ImageNotFoundException", "RepositoryNotFoundException"):
            return None
        raise
    return details[0] if details else None


def docker_logins(ecr: Any, registries: Sequence[str]) -> list[tuple[str, str, str]]:
    """(registry, user, password) for each registry account named (ours; the DLC's for a DLC base)."""
    tokens = ecr.get_authorization_token(registryIds=list(registries))["authorizationData"]
    out = []
    for token in tokens:
        user, password = base64.b64decode(token["authorizationToken"]).decode().split(":", 1)
        out.append((token["proxyEndpoint"].removeprefix("https://"), user, password))
    return out


def build_and_push(ecr: Any, account: str, region: str, tag: str, images: Sequence[ServingImage]) -> None:
    """Push ``tag`` of each image unless its repository already has it; an image over its size limit is refused.

    A tag pushed earlier is checked by its size in ECR (compressed, so only a floor of what SageMaker
    counts); one built here by its uncompressed size, before it is pushed.
    """
    to_build = []
    for image in images:
        ensure_repository(ecr, image.repository)
        uri = image.uri(account, region, tag)
        detail = pushed(ecr, image.repository, tag)
        if detail is None:
            to_build.append(image)
            continue
        print(f"{uri} is already in ECR", flush=True)
        check_size(image, uri, int(detail.get("imageSizeInBytes", 0)), "its compressed size in ECR")
    if not to_build:
        return
    registries = [account] + ([DLC_ACCOUNT] if any(image.on_dlc for image in to_build) else [])
    for host, user, password in docker_logins(ecr, registries):
        login = subprocess.run(
            [docker(), "login", "--username", user, "--password-stdin", host], input=password, text=True, check=False
        )
        if login.returncode != 0:
            fail(f"docker login to {host} failed")
    for image in to_build:
        build, push = commands(image, account, region, tag)
        run_command(build)
        if image.size_limit is not None:
            uri = image.uri(account, region, tag)
            check_size(image, uri, local_size(uri), "docker image inspect, uncompressed")
        run_command(push)
