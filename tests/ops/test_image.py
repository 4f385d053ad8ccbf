"""--deploy and our serving images: the dry run's docker steps, the ECR repositories (moto), the serverless size cap.

The GPU image runs the model (ServingContainer endpoint-server); the slim CPU image runs the serverless model
(EndpointKind or FallbackMode serverless, ServerlessContainer endpoint-server-cpu). samconfig's ``default``
environment is serverless, ``prod`` falls back to serverless, ``dev`` has no serverless model.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from omnisearch_ops import image as _image
from tests.aws_moto import moto_server, reset, run_script, server_client, subprocess_env
from tests.ops.deploy_tools import WITH_ONNX, recording_tools

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "deploy_sagemaker_endpoint.py"
LIMIT = 10 * 1024**3  # Serverless Inference's image cap: "greater than supported size 10737418240"
URL = "s3://my-models/clip/model.tar.gz"


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
    assert "docker build -f endpoint_server/Dockerfile --platform linux/amd64" in lines[0]
    assert f"-t '{image}' ." in lines[0]
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


@pytest.mark.parametrize("repository", ["omnisearch-embed-endpoint", "omnisearch-embed-endpoint-cpu"])
def test_the_repository_is_created_once_with_immutable_tags(ecr, repository: str) -> None:
    _image.ensure_repository(ecr, repository)
    _image.ensure_repository(ecr, repository)  # idempotent
    (repo,) = ecr.describe_repositories()["repositories"]
    assert repo["repositoryName"] == repository and repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
    assert _image.pushed(ecr, repository, "3f2c1e9") is None
    manifest = '{"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json"}'
    ecr.put_image(repositoryName=repository, imageManifest=manifest, imageTag="3f2c1e9")
    assert _image.pushed(ecr, repository, "3f2c1e9")["imageTags"] == ["3f2c1e9"]


def test_deploy_pushes_the_image_of_this_tag_then_deploys_it(tmp_path: Path) -> None:
    """--deploy against moto's server: the repository is created, docker logs in, builds, pushes; sam gets the tag."""
    tools, calls = recording_tools(tmp_path)
    with moto_server() as server:
        reset(server)
        env = {**subprocess_env(server), **tools}
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


def test_a_serverless_stack_builds_the_slim_image_first_and_the_gpu_one(tmp_path: Path) -> None:
    """samconfig's default environment is serverless: the archive is checked, then both images, then sam."""
    lines = _dry_run("--config-env", "default", "--image-tag", "3f2c1e9", "--region", "eu-west-1")
    cpu = "<account>.dkr.ecr.eu-west-1.amazonaws.com/omnisearch-embed-endpoint-cpu:3f2c1e9"
    gpu = "<account>.dkr.ecr.eu-west-1.amazonaws.com/omnisearch-embed-endpoint:3f2c1e9"
    steps = [line.split(" ", 2)[2] for line in lines]
    assert len(steps) == 8
    assert "clip_onnx.json, text.onnx, image.onnx, tokenizer.json" in steps[0] and "s3://b/k/model.tar.gz" in steps[0]
    assert steps[1].startswith("docker build -f endpoint_server/Dockerfile.cpu --platform linux/amd64 -t")
    assert f"'{cpu}' ." in steps[1] and "BASE_IMAGE" not in steps[1]  # the Dockerfile's own python:3.12-slim
    assert "omnisearch-embed-endpoint-cpu" in steps[2] and str(LIMIT) in steps[2]
    assert steps[3] == f"docker push '{cpu}'"
    assert "-f endpoint_server/Dockerfile " in steps[4] and "BASE_IMAGE=763104351884.dkr.ecr.eu-west-1" in steps[4]
    assert steps[5] == f"docker push '{gpu}'"
    assert "EndpointKind=serverless" in steps[7] and "EndpointServerImageTag=3f2c1e9" in steps[7]


@pytest.mark.parametrize(
    ("args", "built", "sent"),
    [
        (
            ("--config-env", "default", "--serverless-container", "toolkit"),
            ["Dockerfile"],
            "ServerlessContainer=toolkit",
        ),
        (("--config-env", "default", "--serving-container", "toolkit"), ["Dockerfile.cpu"], "ServingContainer=toolkit"),
        (("--config-env", "prod"), ["Dockerfile.cpu", "Dockerfile"], "FallbackMode=serverless"),
        (("--config-env", "dev", "--serverless-container", "endpoint-server-cpu"), ["Dockerfile"], "Stage=dev"),
    ],
)
def test_each_image_is_built_only_where_the_stack_runs_it(args: tuple[str, ...], built: list[str], sent: str) -> None:
    lines = _dry_run(*args)
    builds = [line.split(" -f endpoint_server/", 1)[1].split()[0] for line in lines if "docker build" in line]
    assert builds == built
    assert sent in lines[-1]
    assert ("EndpointServerImageTag=" in lines[-1]) is bool(built)
    assert any("tokenizer.json" in line for line in lines) is ("Dockerfile.cpu" in built)


def test_deploy_with_a_serverless_fallback_pushes_both_images(tmp_path: Path) -> None:
    """prod (FallbackMode serverless) against moto's server: both repositories, the slim image measured, then sam."""
    tools, calls = recording_tools(tmp_path)
    with moto_server() as server:
        reset(server)
        s3 = server_client(server, "s3")
        s3.create_bucket(Bucket="my-models")
        s3.put_object(Bucket="my-models", Key="clip/model.tar.gz", Body=WITH_ONNX)
        env = {**subprocess_env(server), **tools}
        args = ("--deploy", "--config-env", "prod", "--model-data-url", URL, "--image-tag", "3f2c1e9")
        result = run_script(SCRIPT, env, *args, cwd=ROOT)
        assert result.returncode == 0, result.stderr
        repos = server_client(server, "ecr").describe_repositories()["repositories"]
    assert sorted(repo["repositoryName"] for repo in repos) == [
        "omnisearch-embed-endpoint",
        "omnisearch-embed-endpoint-cpu",
    ]
    assert all(repo["imageTagMutability"] == "IMMUTABLE" for repo in repos)
    lines = calls.read_text().splitlines()
    registry = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
    cpu, gpu = f"{registry}/omnisearch-embed-endpoint-cpu:3f2c1e9", f"{registry}/omnisearch-embed-endpoint:3f2c1e9"
    assert [line.split()[:3] for line in lines] == [
        ["docker", "login", "--username"], ["docker", "login", "--username"],
        ["docker", "build", "-f"], ["docker", "image", "inspect"], ["docker", "push", cpu],
        ["docker", "build", "-f"], ["docker", "push", gpu],
        ["sam", "build", "--config-env"], ["sam", "deploy", "--config-env"],
    ]  # fmt: skip
    assert "endpoint_server/Dockerfile.cpu" in lines[2] and lines[3].endswith(
        f"{registry}/omnisearch-embed-endpoint-cpu:3f2c1e9"
    )
    assert "EndpointServerImageTag=3f2c1e9" in lines[-1] and "FallbackMode=serverless" in lines[-1]


def test_a_slim_image_over_10_gb_is_refused_before_it_is_pushed(tmp_path: Path) -> None:
    tools, calls = recording_tools(tmp_path, image_size=LIMIT + 1)
    with moto_server() as server:
        reset(server)
        s3 = server_client(server, "s3")
        s3.create_bucket(Bucket="my-models")
        s3.put_object(Bucket="my-models", Key="clip/model.tar.gz", Body=WITH_ONNX)
        env = {**subprocess_env(server), **tools}
        args = ("--deploy", "--config-env", "default", "--model-data-url", URL, "--image-tag", "3f2c1e9")
        result = run_script(SCRIPT, env, *args, cwd=ROOT)
    assert result.returncode == 2, result.stdout
    assert f"{LIMIT + 1} bytes" in result.stderr and f"limit of {LIMIT} bytes" in result.stderr
    assert "--serverless-container toolkit" in result.stderr
    done = [line.split()[:2] for line in calls.read_text().splitlines()]
    assert done == [["docker", "login"], ["docker", "login"], ["docker", "build"], ["docker", "image"]]


def _detail(size: int) -> dict:
    return {
        "registryId": "123456789012",
        "repositoryName": "omnisearch-embed-endpoint-cpu",
        "imageDigest": "sha256:" + "a" * 64,
        "imageTags": ["3f2c1e9"],
        "imageSizeInBytes": size,
        "imagePushedAt": datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC),
    }


def _stubbed_ecr(size: int) -> tuple[object, Stubber]:
    """A real ECR client answering: the repository exists, and so does the tag, ``size`` bytes in ECR."""
    ecr = boto3.client("ecr", region_name="us-east-1")
    stub = Stubber(ecr)
    repository = {
        "repositoryArn": "arn:aws:ecr:us-east-1:123456789012:repository/omnisearch-embed-endpoint-cpu",
        "registryId": "123456789012",
        "repositoryName": "omnisearch-embed-endpoint-cpu",
        "repositoryUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/omnisearch-embed-endpoint-cpu",
    }
    stub.add_response(
        "describe_repositories", {"repositories": [repository]}, {"repositoryNames": ["omnisearch-embed-endpoint-cpu"]}
    )
    stub.add_response(
        "describe_images",
        {"imageDetails": [_detail(size)]},
        {"repositoryName": "omnisearch-embed-endpoint-cpu", "imageIds": [{"imageTag": "3f2c1e9"}]},
    )
    return ecr, stub


def test_a_slim_image_already_in_ecr_over_10_gb_is_refused(tmp_path: Path, monkeypatch, capsys) -> None:
    tools, calls = recording_tools(tmp_path)
    monkeypatch.setenv("DOCKER_CLI", tools["DOCKER_CLI"])
    ecr, stub = _stubbed_ecr(LIMIT + 1)
    with stub, pytest.raises(SystemExit) as stopped:
        _image.build_and_push(ecr, "123456789012", "us-east-1", "3f2c1e9", [_image.CPU])
    assert stopped.value.code == 2
    assert "its compressed size in ECR" in capsys.readouterr().err
    stub.assert_no_pending_responses()
    assert not calls.exists()  # nothing built, nothing pushed


def test_a_slim_image_already_in_ecr_within_the_cap_is_not_built_again(tmp_path: Path, monkeypatch) -> None:
    tools, calls = recording_tools(tmp_path)
    monkeypatch.setenv("DOCKER_CLI", tools["DOCKER_CLI"])
    ecr, stub = _stubbed_ecr(LIMIT)
    with stub:
        _image.build_and_push(ecr, "123456789012", "us-east-1", "3f2c1e9", [_image.CPU])
    stub.assert_no_pending_responses()
    assert not calls.exists()
