"""An archive uploaded to S3 under a key that carries its sha256, so only a changed archive is a new ModelDataUrl."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omnisearch_ops.model_archive import archive_sha256, say


def content_key(prefix: str, sha256: str) -> str:
    """``prefix/model-<sha256>.tar.gz``; a prefix ending in ``name.tar.gz`` gives ``name-<sha256>.tar.gz``."""
    prefix = prefix.strip("/")
    if prefix.endswith(".tar.gz"):
        return f"{prefix.removesuffix('.tar.gz')}-{sha256}.tar.gz"
    return "/".join(p for p in (prefix, f"model-{sha256}.tar.gz") if p)


def upload_archive(path: Path, s3_uri: str, s3_client: Any = None) -> str:
    """Upload under ``s3://bucket/prefix`` with the archive's sha256 in the key; an archive already there is kept.

    A new archive is then always a new key (a new ModelDataUrl, which CloudFormation rolls out with its
    guardrails), and instances that scale out later still read the archive their model was created with.
    """
    if not s3_uri.startswith("s3://") or not s3_uri[5:].split("/", 1)[0]:
        raise ValueError(f"{s3_uri!r} is not an s3://bucket/prefix URI")
    bucket, _, prefix = s3_uri[5:].partition("/")
    sha256 = archive_sha256(path)
    key = content_key(prefix, sha256)
    if s3_client is None:
        import boto3

        s3_client = boto3.client("s3")
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError

    size, sent, shown = Path(path).stat().st_size, 0, -1
    uri = f"s3://{bucket}/{key}"
    try:
        existing = s3_client.head_object(Bucket=bucket, Key=key)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
            raise RuntimeError(f"cannot check {uri}: {e}") from e
        existing = None
    except BotoCoreError as e:
        raise RuntimeError(f"cannot check {uri}: {e}") from e
    if existing and existing["ContentLength"] == size and existing.get("Metadata", {}).get("sha256") == sha256:
        say(f"{uri} is already uploaded (same sha256): nothing to upload")
        return uri

    def progress(chunk: int) -> None:
        nonlocal sent, shown
        sent += chunk
        step = int(100 * sent / size) // 25 if size else 4
        if step > shown:
            shown = step
            say(f"  uploaded {sent / 1e6:.1f} of {size / 1e6:.1f} MB")

    say(f"uploading {path} to {uri}")
    try:
        s3_client.upload_file(str(path), bucket, key, ExtraArgs={"Metadata": {"sha256": sha256}}, Callback=progress)
    except (BotoCoreError, ClientError, S3UploadFailedError) as e:
        raise RuntimeError(f"upload to {uri} failed: {e}") from e
    return uri
