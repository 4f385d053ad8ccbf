"""A few-kilobyte image holding only this machine's /bin/sh and the libraries it loads, for tests that need a
container and no base image: ``docker import`` of those files takes a second, where a base image takes minutes."""

from __future__ import annotations

import io
import re
import subprocess
import tarfile
from pathlib import Path

from containers.engine import docker

__all__ = ["import_shell_image"]


def _shell_files() -> list[Path]:
    """/bin/sh and every library ``ldd`` names for it."""
    listed = subprocess.run(["ldd", "/bin/sh"], capture_output=True, text=True, check=True).stdout
    return [Path("/bin/sh"), *(Path(found) for found in re.findall(r"(/\S+) \(0x", listed))]


def import_shell_image(tag: str, changes: list[str] | tuple[str, ...] = ()) -> str:
    """``docker import`` of /bin/sh with its libraries as ``tag``, with Dockerfile-like ``changes``; its image id."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", dereference=True) as tar:
        for path in _shell_files():
            tar.add(path, arcname=str(path).lstrip("/"))
    flags = [f"--change={change}" for change in changes]
    return docker("import", *flags, "-", tag, input=buffer.getvalue()).strip()
