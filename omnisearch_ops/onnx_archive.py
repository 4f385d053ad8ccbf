"""Whether model.tar.gz carries the ONNX files the slim CPU image serves, checked before a deploy creates anything.

The slim image (endpoint_server/Dockerfile.cpu) has no torch: on an archive without these files its server
stops at start, and the serverless endpoint never becomes healthy. The deploy command refuses such an archive
first, locally built or already in S3. The names are the model code's own (clip_onnx, clip_tokens).
"""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import IO, Any

from model_code.code.clip_onnx import IMAGE_FILE, META, TEXT_FILE
from model_code.code.clip_tokens import TOKENIZER_FILE
from omnisearch_ops.console import EXIT_USAGE, fail

ONNX_FILES = (META, TEXT_FILE, IMAGE_FILE, TOKENIZER_FILE)  # at the archive's top, next to clip_model.json


def missing_onnx_files(archive: IO[bytes]) -> list[str]:
    """The ONNX files not among the archive's top-level files.

    Reads the gzip stream once, front to back (an S3 body works as well as a file), and stops as soon as
    every file has been seen.
    """
    wanted = set(ONNX_FILES)
    with tarfile.open(fileobj=archive, mode="r|gz") as tar:
        for member in tar:
            if member.isfile():
                wanted.discard(member.name.removeprefix("./"))
            if not wanted:
                break
    return [name for name in ONNX_FILES if name in wanted]


def _require(read: Any, where: str) -> None:
    """Run ``read`` (the missing files); refuse (exit 2) an archive without them, or one that is no tar.gz."""
    try:
        missing = read()
    except (tarfile.TarError, EOFError, OSError) as e:
        fail(f"cannot read {where} as a tar.gz archive: {e}", EXIT_USAGE)
    if missing:
        fail(
            f"{where} lacks {', '.join(missing)}: the serverless image endpoint-server-cpu (ONNX Runtime, no torch)"
            " serves only archives that carry their ONNX files. Rebuild the archive with scripts/package_model.py"
            " without --no-onnx, or deploy with --serverless-container toolkit",
            EXIT_USAGE,
        )


def require_local(path: Path) -> None:
    """Refuse a local archive without its ONNX files."""

    def read() -> list[str]:
        with open(path, "rb") as f:
            return missing_onnx_files(f)

    _require(read, str(path))


def require_in_s3(s3: Any, url: str) -> None:
    """Refuse an uploaded archive (``s3://bucket/key``) without its ONNX files, streaming it from S3."""
    bucket, _, key = url.removeprefix("s3://").partition("/")

    def read() -> list[str]:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        try:
            return missing_onnx_files(body)
        finally:
            body.close()

    _require(read, url)
