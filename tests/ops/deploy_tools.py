"""What the deploy tests share: docker and sam stand-ins that record their calls, and small model archives."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable
from pathlib import Path

from omnisearch_ops.onnx_archive import ONNX_FILES

IMAGE_SIZE = 700 * 1024**2  # what the docker stand-in reports for ``docker image inspect``: a slim image's size


def recording_tools(tmp_path: Path, image_size: int = IMAGE_SIZE) -> tuple[dict[str, str], Path]:
    """``sam`` and ``docker`` scripts that append each call to a file: (SAM_CLI/DOCKER_CLI settings, that file).

    docker answers ``image inspect`` with ``image_size``; only ``login`` reads its stdin (the password).
    """
    calls = tmp_path / "calls"
    for tool in ("sam", "docker"):
        script = tmp_path / tool
        script.write_text(
            f'#!/bin/sh\necho "{tool} $@" >> {calls}\n'
            f'if [ "$1" = image ]; then echo {image_size}; fi\n'
            'if [ "$1" = login ]; then cat > /dev/null; fi\n'
        )
        script.chmod(0o755)
    return {"SAM_CLI": str(tmp_path / "sam"), "DOCKER_CLI": str(tmp_path / "docker")}, calls


def archive_bytes(names: Iterable[str]) -> bytes:
    """A model.tar.gz holding code/inference.py, clip_model.json and ``names``, each a few bytes."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in ("code/inference.py", "clip_model.json", *names):
            data = f"{name}\n".encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


WITH_ONNX = archive_bytes(ONNX_FILES)
WITHOUT_ONNX = archive_bytes([])
