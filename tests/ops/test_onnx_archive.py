"""The slim serverless image needs the archive's ONNX files: deploy refuses an archive without them, before anything.

Uploaded archives are read from S3 (moto), built ones on disk before their upload; the docker and sam stand-ins
record whether anything ran.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from omnisearch_ops import package_model, sam, wheels
from omnisearch_ops.aws import AwsTarget
from omnisearch_ops.deploy_commands import DeployRequest, deploy
from omnisearch_ops.onnx_archive import missing_onnx_files, require_in_s3
from tests.ops.deploy_tools import WITH_ONNX, WITHOUT_ONNX, archive_bytes, recording_tools

URL = "s3://my-models/clip/model.tar.gz"
FILES = ["clip_onnx.json", "text.onnx", "image.onnx", "tokenizer.json"]  # what package_model.py writes for ONNX


@pytest.fixture
def aws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """moto in this process, a models bucket, and the docker and sam stand-ins: (s3, ecr, calls file)."""
    tools, calls = recording_tools(tmp_path)
    for name, value in tools.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        s3, ecr = boto3.client("s3", region_name="us-east-1"), boto3.client("ecr", region_name="us-east-1")
        s3.create_bucket(Bucket="my-models")
        yield s3, ecr, calls


def test_the_check_reads_top_level_files_only() -> None:
    assert missing_onnx_files(io.BytesIO(WITH_ONNX)) == []
    assert missing_onnx_files(io.BytesIO(WITHOUT_ONNX)) == FILES
    assert missing_onnx_files(io.BytesIO(archive_bytes(f"./{name}" for name in FILES))) == []  # tar -C dir .
    assert missing_onnx_files(io.BytesIO(archive_bytes(f"code/{name}" for name in FILES))) == FILES
    assert missing_onnx_files(io.BytesIO(archive_bytes(["text.onnx", "image.onnx"]))) == FILES[::3]


def test_a_serverless_deploy_of_an_archive_without_onnx_files_creates_nothing(aws, capsys) -> None:
    s3, ecr, calls = aws
    s3.put_object(Bucket="my-models", Key="clip/model.tar.gz", Body=WITHOUT_ONNX)
    request = DeployRequest(model_data_url=URL, image_tag="3f2c1e9")
    with pytest.raises(SystemExit) as stopped:
        deploy(AwsTarget(config_env="default"), request)  # samconfig's default: EndpointKind=serverless
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert URL in err and "clip_onnx.json, text.onnx, image.onnx, tokenizer.json" in err
    assert "scripts/package_model.py without --no-onnx" in err and "--serverless-container toolkit" in err
    assert ecr.describe_repositories()["repositories"] == []  # no repository, no image
    assert not calls.exists()  # no docker, no sam


def test_the_stock_dlc_serves_an_archive_without_onnx_files(aws) -> None:
    s3, ecr, calls = aws
    s3.put_object(Bucket="my-models", Key="clip/model.tar.gz", Body=WITHOUT_ONNX)
    request = DeployRequest(model_data_url=URL, image_tag="3f2c1e9", serverless_container="toolkit")
    assert deploy(AwsTarget(config_env="default"), request) == 0
    assert [r["repositoryName"] for r in ecr.describe_repositories()["repositories"]] == ["omnisearch-embed-endpoint"]
    deployed = calls.read_text().splitlines()[-1]
    assert deployed.startswith("sam deploy") and "ServerlessContainer=toolkit" in deployed


def test_an_archive_with_its_onnx_files_passes(aws) -> None:
    s3, _, _ = aws
    s3.put_object(Bucket="my-models", Key="clip/model.tar.gz", Body=WITH_ONNX)
    require_in_s3(s3, URL)  # no refusal


def test_what_is_not_a_tar_gz_is_refused(aws, capsys) -> None:
    s3, _, _ = aws
    s3.put_object(Bucket="my-models", Key="clip/model.tar.gz", Body=b"not an archive")
    with pytest.raises(SystemExit) as stopped:
        require_in_s3(s3, URL)
    assert stopped.value.code == 2 and "cannot read" in capsys.readouterr().err


@pytest.mark.parametrize("onnx", [True, False])
def test_a_built_archive_is_checked_before_its_upload(aws, tmp_path, monkeypatch, capsys, onnx: bool) -> None:
    """deploy --bucket: the packager's own archive, with and without its ONNX files (--no-onnx)."""
    s3, _, _ = aws
    monkeypatch.setattr(wheels, "wheelhouse", lambda *args, **kwargs: None)  # no package index: no wheels
    monkeypatch.setattr(package_model, "build_archive", functools.partial(package_model.build_archive, onnx=onnx))
    archive, prefix = tmp_path / "model.tar.gz", "s3://my-models/omnisearch-embed/default/tiny-shapes"
    if onnx:
        uri = sam.package_and_upload("tiny-shapes", "", archive, prefix, s3, require_onnx=True)
        assert uri.startswith(f"{prefix}/model-")
        return
    with pytest.raises(SystemExit) as stopped:
        sam.package_and_upload("tiny-shapes", "", archive, prefix, s3, require_onnx=True)
    assert stopped.value.code == 2 and "--no-onnx" in capsys.readouterr().err
    assert "Contents" not in s3.list_objects_v2(Bucket="my-models")  # nothing uploaded
