"""scripts/package_model.py: the archive round trip (build -> extract -> serve) and the upload (moto)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from omnisearch_ops import package_model, wheels

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return package_model.build_archive("tiny-shapes", "", tmp_path_factory.mktemp("pkg") / "model.tar.gz")


def test_archive_holds_code_config_weights_and_manifest(archive):
    with tarfile.open(archive, "r:gz") as tar:
        names = set(tar.getnames())
        manifest = json.load(tar.extractfile("clip_model.json"))
        config = json.load(tar.extractfile("tiny-shapes.json"))
        code = tar.extractfile("code/inference.py").read()
    shipped_code = {f"code/{p.name}" for p in (ROOT / "model_code" / "code").iterdir() if p.suffix in (".py", ".txt")}
    assert names == shipped_code | {  # every module of the model code, and what the torch-free engine reads
        "tiny-shapes.json",
        "tiny-shapes.pt",
        "clip_model.json",
        "text.onnx",
        "image.onnx",
        "tokenizer.json",
        "clip_onnx.json",
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
    assert result["engine"] == "onnxruntime"  # the archive's ONNX towers, on this CPU
    assert result["text_image_similarity"] > 0.5  # the trained model matches "a photo of a red circle" to one
    assert "code/inference.py" in result["files"]
    assert "verified: tiny-shapes" in capsys.readouterr().out


def test_verify_refuses_an_archive_without_code(tmp_path):
    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        tar.add(ROOT / "model_code" / "tiny_shapes" / "tiny-shapes.json", arcname="tiny-shapes.json")
    with pytest.raises(RuntimeError, match=r"lacks code/inference\.py"):
        package_model.verify_archive(bad)


def _put_counter(s3) -> list[str]:
    calls: list[str] = []
    for operation in ("PutObject", "CreateMultipartUpload"):
        s3.meta.events.register(f"before-call.s3.{operation}", lambda model, **_: calls.append(model.name))
    return calls


@mock_aws
def test_upload_key_carries_the_sha256_and_the_same_archive_uploads_nothing(archive, capsys):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="models")
    puts = _put_counter(s3)
    sha = package_model.archive_sha256(archive)
    first = package_model.upload_archive(archive, "s3://models/clip/dev/", s3_client=s3)
    assert first == f"s3://models/clip/dev/model-{sha}.tar.gz" and puts
    head = s3.head_object(Bucket="models", Key=f"clip/dev/model-{sha}.tar.gz")
    assert head["ContentLength"] == archive.stat().st_size and head["Metadata"] == {"sha256": sha}
    puts.clear()
    assert package_model.upload_archive(archive, "s3://models/clip/dev", s3_client=s3) == first
    assert puts == [] and "already uploaded" in capsys.readouterr().out
    named = package_model.upload_archive(archive, "s3://models/x/y.tar.gz", s3_client=s3)
    assert named == f"s3://models/x/y-{sha}.tar.gz"


@mock_aws
def test_an_object_under_the_key_that_is_not_this_archive_is_replaced(archive):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="models")
    key = f"p/model-{package_model.archive_sha256(archive)}.tar.gz"
    s3.put_object(Bucket="models", Key=key, Body=b"half an upload")
    package_model.upload_archive(archive, "s3://models/p", s3_client=s3)
    assert s3.head_object(Bucket="models", Key=key)["ContentLength"] == archive.stat().st_size


def test_the_same_inputs_build_the_same_archive(archive, tmp_path):
    again = package_model.build_archive("tiny-shapes", "", tmp_path / "again.tar.gz")
    assert package_model.archive_sha256(again) == package_model.archive_sha256(archive)


@mock_aws
def test_upload_failures_are_clear(archive):
    with pytest.raises(ValueError, match="not an s3://bucket/prefix URI"):
        package_model.upload_archive(archive, "https://models/x")
    with pytest.raises(RuntimeError, match=r"s3://missing-bucket/model-[0-9a-f]{64}\.tar\.gz: .*NoSuchBucket"):
        package_model.upload_archive(archive, "s3://missing-bucket")


def fake_wheel_cache(root: Path) -> Path:
    """A complete cache entry for the repository's requirements.txt: one (uninstallable) wheel and its lock."""
    entry = root / wheels.cache_key((package_model.CODE_DIR / "requirements.txt").read_text())
    entry.mkdir(parents=True)
    (entry / "demo_pkg-1.0-py3-none-any.whl").write_bytes(b"PK not really a wheel")
    (entry / wheels.LOCK_FILE).write_text("demo-pkg==1.0\n")
    return root


@mock_aws
def test_cli_builds_with_cached_wheels_offline_verifies_and_uploads(tmp_path, capsys):
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="models")
    cache = fake_wheel_cache(tmp_path / "cache")
    output = tmp_path / "m.tar.gz"
    code = package_model.main(
        ["--output", str(output), "--upload", "s3://models/tiny", "--offline", "--wheel-cache", str(cache)]
    )
    out = capsys.readouterr().out
    assert code == 0 and "packaging tiny-shapes" in out and "verified" in out and "from the cache" in out
    assert f"done: s3://models/tiny/model-{package_model.archive_sha256(output)}.tar.gz" in out
    with tarfile.open(output, "r:gz") as tar:
        requirements = tar.extractfile("code/requirements.txt").read().decode().splitlines()
        assert "code/wheels/demo_pkg-1.0-py3-none-any.whl" in tar.getnames()
    assert requirements[-3:] == ["--no-index", "--find-links wheels", "demo-pkg==1.0"]
    assert "# DLC: " in "\n".join(requirements)  # the source's comments are kept


def test_offline_without_a_complete_cache_fails_clearly(tmp_path, capsys):
    assert (
        package_model.main(["--output", str(tmp_path / "m.tar.gz"), "--offline", "--wheel-cache", str(tmp_path)]) == 1
    )
    assert "no complete wheel cache" in capsys.readouterr().err


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
