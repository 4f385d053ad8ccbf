"""Equivalents of the AWS base images, built from Debian's packages where AWS's registries are out of reach.

- ``lambda_runtime``: the Lambda python3.13 runtime's layout (Python 3.13 from Debian trixie, a /var/lang
  environment with AWS's runtime interface client ``awslambdaric`` and boto3, ``/var/runtime/bootstrap``).
  SAM adds its own runtime emulator on top (``sam local ... --invoke-image``). It differs from AWS's image:
  Debian's Python build and libraries instead of Amazon Linux 2023's, and boto3 at the version pinned here.
- ``dlc_cpu``: a stand-in for the PyTorch 2.6.0 inference DLC: bookworm, pyenv's Python 3.12, torch 2.6.0 and
  torchvision 0.21.0 from PyPI (CPU-usable; no CUDA driver), numpy, Pillow. It lacks the DLC's CUDA toolkit,
  TorchServe and SageMaker toolkit, which our serving image does not use.
- ``python_slim``: an equivalent of python:3.12-slim (endpoint_server/Dockerfile.cpu's base), built as that
  image is laid out: bookworm with only the runtime libraries, docs, manuals and locales left out (as
  debian:bookworm-slim excludes them), pyenv's Python 3.12 with pip, stripped, without its static library,
  tests or stdlib .pyc files. It differs from the official image: pyenv's build (at its own prefix, on PATH)
  instead of one configured into /usr/local, and pip at the version pinned here.
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

__all__ = ["DLC_TAG", "LAMBDA_PACKAGES", "SLIM_TAG", "dlc_cpu", "lambda_runtime", "lambda_tag", "python_slim"]

# What the runtime image brings itself (the layer may bring a newer boto3; it then wins on sys.path).
LAMBDA_PACKAGES = ("awslambdaric==4.2.2", "boto3==1.40.4", "botocore==1.40.4")
DLC_PACKAGES = ("torch==2.6.0", "torchvision==0.21.0", "numpy==2.2.6", "pillow==11.3.0")
DLC_TAG = "omnisearch-equivalent/pytorch-inference:2.6.0-cpu-py312"
SLIM_PACKAGES = ("pip==26.2.1",)
SLIM_TAG = "omnisearch-equivalent/python:3.12-slim"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
_PLATFORM = {"x86_64": "x86_64", "arm64": "aarch64"}
_BOOTSTRAP = """#!/bin/sh
# As AWS's python3.13 image starts a function: the runtime interface client runs the handler.
exec /var/lang/bin/python3 -m awslambdaric "$_HANDLER"
"""
_DLC_LIBS = "libssl3,libffi8,libsqlite3-0,zlib1g,libbz2-1.0,liblzma5,libreadline8,libncursesw6,libuuid1,libgomp1"
# As python:3.12-slim: netbase, tzdata and what the interpreter's modules link against (tkinter's Tk aside).
_SLIM_LIBS = (
    "netbase,tzdata,libssl3,libffi8,libsqlite3-0,zlib1g,libbz2-1.0,liblzma5,libreadline8,libncursesw6,libuuid1,"
    "libexpat1,libnsl2,libtirpc3"
)
# What debian:bookworm-slim's dpkg configuration keeps out (copyright notices stay), and apt's package lists.
_SLIM_DROPPED = ("usr/share/man", "usr/share/info", "usr/share/locale", "usr/share/groff", "usr/share/lintian")
# What python:3.12-slim leaves out of its Python: tests, .pyc files, the static library; Tk is not installed.
_SLIM_IGNORED = ("site-packages", "test", "tests", "idle_test", "__pycache__", "libpython*.a", "idlelib", "tkinter",
                 "_tkinter.*.so")  # fmt: skip
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
# python:3.12-slim's config; PIP_CERT as in the DLC stand-in: pip inside `docker build` needs this machine's CAs.
_SLIM_CHANGES = (
    "ENV PATH={prefix}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    "ENV PYTHON_VERSION={version}",
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
            "the DLC stand-in and the python:3.12-slim equivalent need pyenv's Python 3.12 "
            "(~/.pyenv/versions/3.12.x): pyenv install 3.12.1"
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
    ignore = ("site-packages", "test", "tests", "__pycache__", "idlelib", "tkinter")
    _build_pyenv_image(DLC_TAG, recipe, python, _DLC_LIBS, ignore, (DLC_PACKAGES, ("pip",)), _DLC_CHANGES)


def python_slim(log: Callable[[str], None] = print) -> str:
    """The equivalent of python:3.12-slim (x86_64), never the official image; returns its tag."""
    python = _pyenv_312()
    recipe = recipe_hash(
        "python-slim", str(python), SLIM_PACKAGES, _SLIM_LIBS, _SLIM_DROPPED, _SLIM_IGNORED, "strip", _SLIM_CHANGES
    )
    build_once(SLIM_TAG, recipe, lambda: _build_slim(recipe, python), log)
    return SLIM_TAG


def _build_slim(recipe: str, python: Path) -> None:
    if shutil.which("strip") is None:
        raise ContainerError(
            "the python:3.12-slim equivalent strips its Python with binutils: apt-get install binutils"
        )
    _build_pyenv_image(SLIM_TAG, recipe, python, _SLIM_LIBS, _SLIM_IGNORED, (SLIM_PACKAGES,), _SLIM_CHANGES, slim=True)


def _build_pyenv_image(tag: str, recipe: str, python: Path, libs: str, ignore: tuple[str, ...],
                       installs: tuple[tuple[str, ...], ...], changes: tuple[str, ...], *,
                       slim: bool = False) -> None:  # fmt: skip
    """bookworm with ``libs``, pyenv's ``python`` copied in (less ``ignore``), one pip run per ``installs`` item."""
    prefix = python.parents[1]
    with tempfile.TemporaryDirectory(prefix="omnisearch-pyenv-image-") as work:
        root = Path(work) / "root"
        debootstrap("bookworm", root, ["ca-certificates", *libs.split(",")])
        # pyenv's interpreter finds its libpython by an absolute run path: the same path inside the image.
        inside = root / prefix.relative_to("/")
        shutil.copytree(prefix, inside, symlinks=True, ignore=shutil.ignore_patterns(*ignore))
        (inside / "lib/python3.12/site-packages").mkdir()
        if slim:
            _slim_down(root, inside)
        # The same interpreter on this machine installs into the copy (pip's cache serves repeated builds).
        for packages in installs:
            _run_pip(python, ["--prefix", str(inside), "--ignore-installed", "--no-warn-script-location", *packages])
        # pip inside `docker build` here needs this machine's CA bundle (the image's own fails TLS).
        shutil.copy(HOST_CA_BUNDLE, root / "etc/ssl/certs/ca-certificates.crt")
        config = [change.format(prefix=prefix, version=prefix.name) for change in changes]
        import_rootfs(root, tag, recipe, "x86_64", config)


def _slim_down(root: Path, python: Path) -> None:
    """Docs but copyright notices, manuals, locales and apt's lists out; the Python's binaries stripped."""
    for folder in _SLIM_DROPPED:
        shutil.rmtree(root / folder, ignore_errors=True)
    for path in sorted((root / "usr/share/doc").rglob("*"), reverse=True):  # children before their folders
        if path.is_symlink() or path.is_file():
            if path.name != "copyright":
                path.unlink()
        elif not any(path.iterdir()):
            path.rmdir()
    for listing in (root / "var/lib/apt/lists").glob("*"):
        if listing.is_file():
            listing.unlink()
    binaries = [
        python / "bin/python3.12",
        *python.glob("lib/libpython3*.so*"),
        *python.glob("lib/python3.12/lib-dynload/*.so"),
    ]
    binaries = [binary for binary in binaries if binary.is_file() and not binary.is_symlink()]
    subprocess.run(["strip", "--strip-unneeded", *map(str, binaries)], capture_output=True, check=True)


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
