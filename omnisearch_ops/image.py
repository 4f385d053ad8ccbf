"""The serving container's image for the deploy command: this account's ECR repository, docker build and push.

template.yaml runs ``<account>.dkr.ecr.<region>.amazonaws.com/omnisearch-embed-endpoint:<EndpointServerImageTag>``
when ServingContainer is endpoint-server (its default); the deploy workflow and ``omnisearch-deploy deploy`` build
it from endpoint_server/Dockerfile, on the DLC that model_code/code/requirements.txt names, for the stack's region.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import subprocess
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from omnisearch_ops.console import fail
from omnisearch_ops.paths import ROOT
from omnisearch_ops.sam import run_command

REPOSITORY = "omnisearch-embed-endpoint"
DLC_ACCOUNT = "763104351884"
DOCKERIGNORE = "endpoint_server/Dockerfile.dockerignore"  # docker build -f endpoint_server/Dockerfile reads it


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


def context_files(root: Path = ROOT) -> list[Path]:
    """The files ``docker build`` sends: what Dockerfile.dockerignore lets in (``!path``) less ``**/name``."""
    rules = [line.strip() for line in (root / DOCKERIGNORE).read_text().splitlines()]
    rules = [rule for rule in rules if rule and not rule.startswith("#")]
    if not rules or rules[0] != "*":
        raise ValueError(f"{DOCKERIGNORE} must start with '*' (only what it lets in is hashed)")
    skipped = {rule.removeprefix("**/") for rule in rules if rule.startswith("**/")}
    files = []
    for rule in rules:
        if rule.startswith("!"):
            top = root / rule[1:].rstrip("/")
            found = [top] if top.is_file() else [p for p in top.rglob("*") if p.is_file() or p.is_symlink()]
            files += [p for p in found if not skipped & set(p.relative_to(root).parts)]
    return sorted(set(files))


def content_digest(root: Path = ROOT) -> str:
    """12 hex digits of sha256 over the build context's paths, executable bits and bytes."""
    digest = hashlib.sha256()
    for path in context_files(root):
        data = os.readlink(path).encode() if path.is_symlink() else path.read_bytes()
        executable = b"x" if path.lstat().st_mode & 0o111 else b"-"
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + executable)
        digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()[:12]


def default_tag(root: Path = ROOT) -> str:
    """The commit being deployed, so each deploy names a new image (the repository's tags are immutable).

    Uncommitted work, or a tree without git, is tagged by its build context's content instead: a tag that
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


def commands(account: str, region: str, tag: str) -> list[list[str]]:
    """docker build (from the repository root) and docker push of the serving container."""
    image = f"{registry(account, region)}/{REPOSITORY}:{tag}"
    build = [docker(), "build", "-f", "endpoint_server/Dockerfile", "--build-arg", f"BASE_IMAGE={base_image(region)}"]
    return [[*build, "-t", image, "."], [docker(), "push", image]]


def ensure_repository(ecr: Any) -> None:
    """Create the repository on first use: immutable tags, scanned on push."""
    try:
        ecr.describe_repositories(repositoryNames=[REPOSITORY])
    except ClientError as e:
        if e.response["Error"]["Code"] != "RepositoryNotFoundException":
            raise
        ecr.create_repository(
            repositoryName=REPOSITORY,
            imageTagMutability="IMMUTABLE",
            imageScanningConfiguration={"scanOnPush": True},
        )


def exists(ecr: Any, tag: str) -> bool:
    try:
        ecr.describe_images(repositoryName=REPOSITORY, imageIds=[{"imageTag": tag}])
    except ClientError as e:
        if e.response["Error"]["Code"] in ("ImageNotFoundException", "RepositoryNotFoundException"):
            return False
        raise
    return True


def docker_logins(ecr: Any, account: str, region: str) -> list[tuple[str, str, str]]:
    """(registry, user, password) for our registry and the DLC's (the base image is pulled from it)."""
    tokens = ecr.get_authorization_token(registryIds=[account, DLC_ACCOUNT])["authorizationData"]
    out = []
    for token in tokens:
        user, password = base64.b64decode(token["authorizationToken"]).decode().split(":", 1)
        out.append((token["proxyEndpoint"].removeprefix("https://"), user, password))
    return out


def build_and_push(session: Any, account: str, region: str, tag: str) -> None:
    """Push ``tag`` unless the repository already has it."""
    ecr = session.client("ecr")
    ensure_repository(ecr)
    if exists(ecr, tag):
        print(f"{REPOSITORY}:{tag} is already in {registry(account, region)}", flush=True)
        return
    for host, user, password in docker_logins(ecr, account, region):
        login = subprocess.run(
            [docker(), "login", "--username", user, "--password-stdin", host], input=password, text=True, check=False
        )
        if login.returncode != 0:
            fail(f"docker login to {host} failed")
    for command in commands(account, region, tag):
        run_command(command)
