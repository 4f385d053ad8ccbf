"""Equivalents of the AWS base images, built from Debian's packages where AWS's registries are out of reach.

- ``lambda_runtime``: the Lambda python3.13 runtime's layout (Python 3.13 from Debian trixie, a /var/lang
  environment with AWS's runtime interface client ``awslambdaric`` and boto3, ``/var/runtime/bootstrap``).
  SAM adds its own runtime emulator on top (``sam local ... --invoke-image``). It differs from AWS's image:
  Debian's Python build and libraries instead of Amazon Linux 2023's, and boto3 at the version pinned here.
- ``dlc_cpu``: a stand-in for the PyTorch 2.6.0 inference DLC: bookworm, pyenv's Python 3.12, torch 2.6.0 and
  torchvision 0.21.0 from PyPI (CPU-usable; no CUDA driver), numpy, Pillow. It lacks the DLC's CUDA toolkit,
  TorchServe and SageMaker toolkit, which our serving image does not use.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from containers.engine import ContainerError
from containers.rootfs import build_once, debootstrap, import_rootfs, recipe_hash

__all__ = ["DLC_TAG", "LAMBDA_PACKAGES", "dlc_cpu", "lambda_runtime", "lambda_tag"]

# What the runtime image brings itself (the layer may bring a newer boto3; it then wins on sys.path).
LAMBDA_PACKAGES = ("awslambdaric==4.2.2", "boto3==1.40.4", "botocore==1.40.4")
DLC_PACKAGES = ("torch==2.6.0", "torchvision==0.21.0", "numpy==2.2.6", "pillow==11.3.0")
DLC_TAG = "omnisearch-equivalent/pytorch-inference:2.6.0-cpu-py312"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
_PLATFORM = {"x86_64": "x86_64", "arm64": "aarch64"}
_BOOTSTRAP = """#!/bin/sh
# As AWS's python3.13 image starts a function: the runtime interface client runs the handler.
exec /var/lang/bin/python3 -m awslambdaric "$_HANDLER"
"""
_DLC_LIBS = "libssl3,libffi8,libsqlite3-0,zlib1g,libbz2-1.0,liblzma5,libreadline8,libncursesw6,libuuid1,libgomp1"
# The images' configs, as `docker import --change` lines; each is part of its recipe hash.
_LAMBDA_CHANGES = (
    "ENV PATH=/var/lang/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/opt/bin",
    "ENV LANG=C.UTF-8",
    "ENV TZ=:/etc/localtime",
    "ENV LAMBDA_TASK_ROOT=/var/task",
    "ENV LAMBDA_RUNTIME_DIR=/var/runtime",
    "ENV PYTHONPATH=/var/runtime:/var/task:/opt/python",
    "WORKDIR /var/task",
    'ENTRYPOINT ["/var/runtime/bootstrap"]',
)
_DLC_CHANGES = (
    "ENV PATH={prefix}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    "ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt",
    'CMD ["python3"]',
)


def lambda_tag(arch: str) -> str:
    return f"omnisearch-equivalent/lambda-python3.13:{arch}"


def lambda_runtime(arch: str = "x86_64", log: Callable[[str], None] = print) -> str:
    """The Lambda python3.13 equivalent for ``arch``; returns its tag."""
    tag = lambda_tag(arch)
    recipe = recipe_hash("lambda", arch, LAMBDA_PACKAGES, "precompiled", _BOOTSTRAP, _LAMBDA_CHANGES)
    build_once(tag, recipe, lambda: _build_lambda(tag, recipe, arch), log)
    return tag


def _build_lambda(tag: str, recipe: str, arch: str) -> None:
    with tempfile.TemporaryDirectory(prefix="omnisearch-lambda-") as work:
        root = Path(work) / "root"
        debootstrap("trixie", root, ["python3", "ca-certificates"], arch)
        # A venv made by hand (no interpreter of the target architecture has to run): /var/lang as in AWS's image.
        lang = root / "var/lang"
        site = lang / "lib/python3.13/site-packages"
        site.mkdir(parents=True)
        (lang / "bin").mkdir()
        for name in ("python", "python3", "python3.13"):
            (lang / "bin" / name).symlink_to("/usr/bin/python3.13")
        (lang / "pyvenv.cfg").write_text("home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.13\n")
        _pip_target(site, LAMBDA_PACKAGES, "3.13", arch)
        # Debian makes the CA bundle when ca-certificates is configured, which an unpacked foreign root never is.
        if not (root / "etc/ssl/certs/ca-certificates.crt").exists():
            shutil.copy(HOST_CA_BUNDLE, root / "etc/ssl/certs/ca-certificates.crt")
        _precompile(root, "3.13", ["usr/lib/python3.13", "var/lang/lib/python3.13/site-packages"])
        runtime = root / "var/runtime"
        runtime.mkdir(parents=True)
        (runtime / "bootstrap").write_text(_BOOTSTRAP)
        (runtime / "bootstrap").chmod(0o755)
        for directory in ("var/task", "opt"):
            (root / directory).mkdir(parents=True, exist_ok=True)
        import_rootfs(root, tag, recipe, arch, _LAMBDA_CHANGES)


def dlc_cpu(log: Callable[[str], None] = print) -> str:
    """The DLC stand-in (x86_64); returns its tag."""
    python = _pyenv_312()
    recipe = recipe_hash("dlc", str(python), DLC_PACKAGES, _DLC_LIBS, _DLC_CHANGES)
    build_once(DLC_TAG, recipe, lambda: _build_dlc(recipe, python), log)
    return DLC_TAG


def _pyenv_312() -> Path:
    found = _newest_pyenv("3.12")
    if found is None:
        raise ContainerError(
            "the DLC stand-in needs pyenv's Python 3.12 (~/.pyenv/versions/3.12.x): pyenv install 3.12.1"
        )
    return found


def _newest_pyenv(version: str) -> Path | None:
    """pyenv's newest ``version`` patch release, compared as numbers: as text, 3.12.9 would beat 3.12.10."""
    found = Path.home().glob(f".pyenv/versions/{version}.*/bin/python{version}")
    numbered = [(_release(python.parents[1].name), python) for python in found]
    numbered = [(release, python) for release, python in numbered if release is not None]
    return max(numbered)[1] if numbered else None


def _release(name: str) -> tuple[int, ...] | None:
    """``3.12.10`` as (3, 12, 10); None for a pyenv folder such as ``3.12-dev`` or ``3.12.1t``."""
    parts = name.split(".")
    return tuple(int(part) for part in parts) if all(part.isdigit() for part in parts) else None


def _build_dlc(recipe: str, python: Path) -> None:
    prefix = python.parents[1]
    with tempfile.TemporaryDirectory(prefix="omnisearch-dlc-") as work:
        root = Path(work) / "root"
        debootstrap("bookworm", root, ["ca-certificates", *_DLC_LIBS.split(",")])
        # pyenv's interpreter finds its libpython by an absolute run path: the same path inside the image.
        inside = root / prefix.relative_to("/")
        ignore = shutil.ignore_patterns("site-packages", "test", "tests", "__pycache__", "idlelib", "tkinter")
        shutil.copytree(prefix, inside, symlinks=True, ignore=ignore)
        (inside / "lib/python3.12/site-packages").mkdir()
        # The same interpreter on this machine installs into the copy (pip's cache serves repeated builds).
        _run_pip(python, ["--prefix", str(inside), "--ignore-installed", "--no-warn-script-location", *DLC_PACKAGES])
        _run_pip(python, ["--prefix", str(inside), "--ignore-installed", "--no-warn-script-location", "pip"])
        # pip inside `docker build` here needs this machine's CA bundle (the image's own fails TLS).
        shutil.copy(HOST_CA_BUNDLE, root / "etc/ssl/certs/ca-certificates.crt")
        changes = [change.format(prefix=prefix) for change in _DLC_CHANGES]
        import_rootfs(root, DLC_TAG, recipe, "x86_64", changes)


def _precompile(root: Path, version: str, folders: list[str]) -> None:
    """Byte-compile with this machine's Python of the same minor version (as Debian's postinst would), so that a
    foreign architecture does not compile its imports under emulation at every cold start; skipped without one."""
    found = _newest_pyenv(version)
    python = str(found) if found else shutil.which(f"python{version}")
    if python is None:
        return
    for folder in folders:
        command = [python, "-m", "compileall", "-q", "-j", "0", "-s", str(root), "-p", "/", str(root / folder)]
        subprocess.run(command, capture_output=True, check=False)


def _pip_target(site: Path, packages: tuple[str, ...], python_version: str, arch: str) -> None:
    platforms = [f"--platform=manylinux2014_{_PLATFORM[arch]}", f"--platform=manylinux_2_28_{_PLATFORM[arch]}"]
    args = ["--target", str(site), "--only-binary=:all:", f"--python-version={python_version}", *platforms]
    _run_pip(Path(sys.executable), [*args, *packages])


def _run_pip(python: Path, args: list[str]) -> None:
    command = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [line for line in (done.stdout + done.stderr).splitlines() if "is ignored" not in line]
        raise ContainerError(f"pip install failed ({done.returncode}):\n" + "\n".join(lines)[-2000:])
