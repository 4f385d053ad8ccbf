"""--deploy and the serving container image: the dry run's docker steps, the ECR repository (moto)."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from omnisearch_ops import image as _image
from tests.aws_moto import moto_server, reset, run_script, server_client, subprocess_env

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "deploy_sagemaker_endpoint.py"


def _dry_run(*args: str) -> list[str]:
    env = subprocess_env("http://127.0.0.1:9")  # nothing listens: a dry run must not call AWS
    env["SAM_CLI"] = "sam"
    result = run_script(
        SCRIPT, env, "--deploy", "--dry-run", "--model-data-url", "s3://b/k/model.tar.gz", *args, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_deploy_builds_and_pushes_the_serving_container_before_sam() -> None:
    lines = _dry_run("--image-tag", "3f2c1e9", "--region", "eu-west-1")
    image = "<account>.dkr.ecr.eu-west-1.amazonaws.com/omnisearch-embed-endpoint:3f2c1e9"
    assert [line.split(" ", 2)[1] for line in lines] == ["1/4", "2/4", "3/4", "4/4"]
    assert "docker build -f endpoint_server/Dockerfile" in lines[0] and f"-t '{image}' ." in lines[0]
    assert "BASE_IMAGE=763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-inference:2.6.0-gpu-py312" in lines[0]
    assert lines[1].endswith(f"docker push '{image}'")
    assert "ServingContainer=endpoint-server" in lines[3] and "EndpointServerImageTag=3f2c1e9" in lines[3]


def test_deploy_with_the_toolkit_builds_no_image() -> None:
    lines = _dry_run("--serving-container", "toolkit")
    assert not any("docker" in line for line in lines)
    assert "ServingContainer=toolkit" in lines[-1] and "EndpointServerImageTag" not in lines[-1]


@pytest.fixture
def ecr():
    with mock_aws():
        yield boto3.client("ecr", region_name="us-east-1")


def test_the_repository_is_created_once_with_immutable_tags(ecr) -> None:
    _image.ensure_repository(ecr)
    _image.ensure_repository(ecr)  # idempotent
    (repo,) = ecr.describe_repositories()["repositories"]
    assert repo["repositoryName"] == "omnisearch-embed-endpoint" and repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
    assert not _image.exists(ecr, "3f2c1e9")
    manifest = '{"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json"}'
    ecr.put_image(repositoryName="omnisearch-embed-endpoint", imageManifest=manifest, imageTag="3f2c1e9")
    assert _image.exists(ecr, "3f2c1e9")


def test_deploy_pushes_the_image_of_this_tag_then_deploys_it(tmp_path: Path) -> None:
    """--deploy against moto's server: the repository is created, docker logs in, builds, pushes; sam gets the tag."""
    calls = tmp_path / "calls"
    for tool in ("sam", "docker"):
        script = tmp_path / tool
        script.write_text(f'#!/bin/sh\necho "{tool} $@" >> {calls}\ncat > /dev/null\n')
        script.chmod(0o755)
    with moto_server() as server:
        reset(server)
        env = {**subprocess_env(server), "SAM_CLI": str(tmp_path / "sam"), "DOCKER_CLI": str(tmp_path / "docker")}
        args = ("--deploy", "--model-data-url", "s3://b/k/model.tar.gz", "--image-tag", "3f2c1e9")
        result = run_script(SCRIPT, env, *args, cwd=ROOT)
        assert result.returncode == 0, result.stderr
        (repo,) = server_client(server, "ecr").describe_repositories()["repositories"]
    assert repo["repositoryName"] == "omnisearch-embed-endpoint" and repo["imageTagMutability"] == "IMMUTABLE"
    lines = calls.read_text().splitlines()
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/omnisearch-embed-endpoint:3f2c1e9"
    assert [line.split()[:2] for line in lines] == [
        ["docker", "login"], ["docker", "login"], ["docker", "build"], ["docker", "push"], ["sam", "build"],
        ["sam", "deploy"],
    ]  # fmt: skip
    assert lines[2].endswith(f"-t {image} .") and lines[3] == f"docker push {image}"
    assert "EndpointServerImageTag=3f2c1e9" in lines[5] and "ServingContainer=endpoint-server" in lines[5]
