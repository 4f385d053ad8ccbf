"""scripts/package_model.py: the archive round trip (build -> extract -> serve) and the upload (moto)."""

from __future__ import annotations

import json
import sys
import tarfile
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import package_model  # noqa: E402


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return package_model.build_archive("tiny-shapes", "", tmp_path_factory.mktemp("pkg") / "model.tar.gz")


def test_archive_holds_code_config_weights_and_manifest(archive):
    with tarfile.open(archive, "r:gz") as tar:
        names = set(tar.getnames())
        manifest = json.load(tar.extractfile("clip_model.json"))
        config = json.load(tar.extractfile("tiny-shapes.json"))
        code = tar.extractfile("code/inference.py").read()
    assert names == {
        "code/inference.py",
        "code/clip_inputs.py",
        "code/clip_text.py",
        "code/clip_records.py",
        "code/requirements.txt",
        "tiny-shapes.json",
        "tiny-shapes.pt",
        "clip_model.json",
    }
    assert manifest == {
        "model": "tiny-shapes",
        "pretrained": "",
        "model_id": "tiny-shapes",
        "config": "tiny-shapes.json",
        "weights": "tiny-shapes.pt",
        "quick_gelu": False,
    }
    assert config["embed_dim"] == 64 and code == (ROOT / "model_code" / "code" / "inference.py").read_bytes()


def test_verify_serves_a_sample_with_the_archived_code(archive, capsys):
    result = package_model.verify_archive(archive)
    assert result["model_id"] == "tiny-shapes" and result["dimension"] == 64 and result["tokens"] == 8
    assert result["text_image_similarity"] > 0.5  # the trained model matches "a photo of a red circle" to one
    assert "code/inference.py" in result["files"]
    assert "verified: tiny-shapes" in capsys.readouterr().out


def test_verify_refuses_an_archive_without_code(tmp_path):
    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        tar.add(ROOT / "model_code" / "tiny_shapes" / "tiny-shapes.json", arcname="tiny-shapes.json")
    with pytest.raises(RuntimeError, match=r"lacks code/inference\.py"):
        package_model.verify_archive(bad)


@mock_aws
def test_upload_to_a_prefix_and_to_an_exact_key(archive, capsys):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="models")
    assert (
        package_model.upload_archive(archive, "s3://models/clip/dev/", s3_client=s3)
        == "s3://models/clip/dev/model.tar.gz"
    )
    assert package_model.upload_archive(archive, "s3://models/x/y.tar.gz") == "s3://models/x/y.tar.gz"
    for key in ("clip/dev/model.tar.gz", "x/y.tar.gz"):
        assert s3.head_object(Bucket="models", Key=key)["ContentLength"] == archive.stat().st_size
    assert "uploaded" in capsys.readouterr().out


@mock_aws
def test_upload_failures_are_clear(archive):
    with pytest.raises(ValueError, match="not an s3://bucket/prefix URI"):
        package_model.upload_archive(archive, "https://models/x")
    with pytest.raises(RuntimeError, match=r"upload to s3://missing-bucket/model\.tar\.gz failed"):
        package_model.upload_archive(archive, "s3://missing-bucket")


@mock_aws
def test_cli_builds_verifies_and_uploads(tmp_path, capsys):
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="models")
    code = package_model.main(["--output", str(tmp_path / "m.tar.gz"), "--upload", "s3://models/tiny"])
    out = capsys.readouterr().out
    assert code == 0 and "packaging tiny-shapes" in out and "verified" in out
    assert "done: s3://models/tiny/m.tar.gz" in out


def test_cli_fails_with_exit_1_and_a_message(tmp_path, capsys):
    assert package_model.main(["--model", "ViT-B-32", "--output", str(tmp_path / "m.tar.gz")]) == 1
    assert "ViT-B-32 needs --pretrained" in capsys.readouterr().err
    assert (
        package_model.main(["--model", "ViT-B-32", "--pretrained", "no-such-tag", "--output", str(tmp_path / "m")]) == 1
    )
    assert "neither a file nor a pretrained tag" in capsys.readouterr().err


def test_every_file_of_model_code_code_ships():
    shipped = {p.name for p in (ROOT / "model_code" / "code").iterdir() if p.is_file()}
    assert shipped == set(package_model.CODE_FILES)
