"""Offline wheels for model.tar.gz: what code/requirements.txt needs, for the container's platform, pinned.

The SageMaker PyTorch toolkit pip-installs code/requirements.txt at every container start. With the wheels
inside the archive and a requirements file that says ``--no-index --find-links wheels`` (pip reads a
relative find-links path in a requirements file relative to that file), the install needs no package index:
an endpoint without internet access comes up, and every instance of a fleet gets the same packages.

The closure is resolved by pip itself for the container (CPython 3.12, manylinux x86_64) with the
container's torch and torchvision as constraints; the container's own packages (torch, torchvision, numpy,
Pillow) and everything only they pull in are left out, so pip never swaps the container's CUDA builds.
Resolved sets are cached per requirements file under ``build/wheels/<key>/`` (or $OMNISEARCH_WHEEL_CACHE)
so a rebuild needs no network.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

from omnisearch_ops.paths import BUILD, ROOT

DEFAULT_CACHE = Path(os.environ.get("OMNISEARCH_WHEEL_CACHE") or BUILD / "wheels")
# The container: AWS PyTorch inference DLC 2.6.0 (Python 3.12, Ubuntu 22.04 = glibc 2.35).
CONTAINER_PACKAGES = {"torch": "2.6.0", "torchvision": "0.21.0"}
NEVER_BUNDLED = frozenset({"torch", "torchvision", "numpy", "pillow"})
PYTHON_VERSION = "3.12"
PLATFORMS = ("manylinux_2_35_x86_64", "manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
TARGET_ENV = {
    **default_environment(),
    "python_version": PYTHON_VERSION,
    "python_full_version": f"{PYTHON_VERSION}.0",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}
WHEEL_DIR = "wheels"  # next to requirements.txt in the archive's code/
LOCK_FILE = "lock.txt"


@dataclass(frozen=True)
class Wheelhouse:
    """A resolved, downloaded set: ``pins`` ("name==version", sorted) and the wheel files that carry them."""

    directory: Path
    pins: tuple[str, ...]

    @property
    def files(self) -> list[Path]:
        return sorted(self.directory.glob("*.whl"))

    def requirements_text(self, source: str) -> str:
        """The archive's code/requirements.txt: the source's comments, then offline options and every pin."""
        comments = [line for line in source.splitlines() if line.startswith("#")]
        header = [
            *comments,
            "#",
            "# Written by scripts/package_model.py: every package below, dependencies included, installs from",
            f"# the wheels in {WHEEL_DIR}/ next to this file, never from an index (an endpoint without internet",
            "# still starts, and every instance gets the same packages).",
            "--no-index",
            f"--find-links {WHEEL_DIR}",
        ]
        return "\n".join([*header, *self.pins]) + "\n"


def requirements_of(text: str) -> list[Requirement]:
    """The requirement lines of a requirements file (comments and blank lines skipped; no options allowed)."""
    found = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            raise ValueError(f"requirements.txt line {number}: options ({line!r}) are added by the packager")
        requirement = Requirement(line)
        if canonicalize_name(requirement.name) in NEVER_BUNDLED:
            raise ValueError(f"requirements.txt line {number}: {requirement.name} is the container's own; remove it")
        found.append(requirement)
    return found


def resolver_python() -> str:
    """A Python 3.12 for pip (markers are then evaluated as in the container), else this interpreter."""
    candidates = [os.environ.get("SERVING_VENV", str(ROOT / ".venv-serving")) + "/bin/python"]
    # pyenv's own interpreters before PATH: its python3.12 shim fails unless PYENV_VERSION names 3.12
    candidates += sorted(str(p) for p in (Path.home() / ".pyenv" / "versions").glob(f"{PYTHON_VERSION}.*/bin/python"))
    candidates += [shutil.which(f"python{PYTHON_VERSION}") or ""]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return sys.executable


def _target_args() -> list[str]:
    args = ["--only-binary=:all:", "--python-version", PYTHON_VERSION, "--implementation", "cp", "--abi", "cp312"]
    for platform in PLATFORMS:
        args += ["--platform", platform]
    return args


def _pip(python: str, *args: str) -> None:
    command = [python, "-m", "pip", *args]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        errors = [line for line in result.stderr.splitlines() if "is ignored: it is neither" not in line]
        raise RuntimeError(f"pip {args[0]} failed: {' '.join(errors[-6:]) or result.returncode}")


def resolve(requirements: list[Requirement], python: str) -> list[str]:
    """Every pin the requirements need in the container, minus the container's packages and their own deps."""
    with tempfile.TemporaryDirectory(prefix="wheel-resolve-") as tmp:
        req_file, constraints, report = Path(tmp, "r.txt"), Path(tmp, "c.txt"), Path(tmp, "report.json")
        req_file.write_text("\n".join(str(r) for r in requirements) + "\n")
        constraints.write_text("".join(f"{name}=={version}\n" for name, version in CONTAINER_PACKAGES.items()))
        _pip(
            python,
            "install",
            "--dry-run",
            "--ignore-installed",
            "--quiet",
            "--report",
            str(report),
            "--target",
            str(Path(tmp, "target")),
            *_target_args(),
            "-r",
            str(req_file),
            "-c",
            str(constraints),
        )
        installs = json.loads(report.read_text())["install"]
    metadata = {canonicalize_name(item["metadata"]["name"]): item["metadata"] for item in installs}
    return _closure(requirements, metadata)


def _closure(roots: list[Requirement], metadata: dict[str, dict]) -> list[str]:
    """Walk requires-dist from the roots (markers as in the container), never into the container's packages."""
    pins: dict[str, str] = {}
    queue = [(r, frozenset(r.extras)) for r in roots]
    seen: set[tuple[str, frozenset[str]]] = set()
    while queue:
        requirement, extras = queue.pop()
        name = canonicalize_name(requirement.name)
        if name in NEVER_BUNDLED or (name, extras) in seen:
            continue
        seen.add((name, extras))
        meta = metadata[name]
        pins[name] = f"{meta['name']}=={meta['version']}"
        for line in meta.get("requires_dist", []):
            dependency = Requirement(line)
            wanted = dependency.marker is None or any(
                dependency.marker.evaluate({**TARGET_ENV, "extra": extra}) for extra in (extras or {""})
            )
            if wanted:
                queue.append((dependency, frozenset(dependency.extras)))
    return sorted(pins.values(), key=str.lower)


def cache_key(source: str) -> str:
    """Same requirements, same container, same platforms: the same cached set."""
    lines = [str(r) for r in requirements_of(source)]
    basis = json.dumps([lines, CONTAINER_PACKAGES, PYTHON_VERSION, PLATFORMS, sorted(NEVER_BUNDLED)])
    return hashlib.sha256(basis.encode()).hexdigest()[:16]


def _complete(directory: Path, pins: list[str]) -> bool:
    have = set()
    for wheel in directory.glob("*.whl"):
        name, version, _, _ = parse_wheel_filename(wheel.name)
        have.add((name, str(version)))
    wanted = {(canonicalize_name(p.split("==")[0]), p.split("==")[1]) for p in pins}
    return wanted <= have


def wheelhouse(source: str, *, cache: Path = DEFAULT_CACHE, offline: bool = False, say=print) -> Wheelhouse:
    """The wheels for a requirements file's text: from the cache when complete, else resolved and downloaded."""
    requirements = requirements_of(source)
    directory = Path(cache) / cache_key(source)
    lock = directory / LOCK_FILE
    if lock.is_file():
        pins = [p for p in lock.read_text().splitlines() if p]
        if _complete(directory, pins):
            say(f"  wheels: {len(pins)} packages from the cache {directory}")
            return Wheelhouse(directory, tuple(pins))
    if offline:
        raise RuntimeError(f"no complete wheel cache in {directory} and --offline was given: run once with a network")
    python = resolver_python()
    say(f"  wheels: resolving {len(requirements)} requirements for CPython {PYTHON_VERSION} manylinux x86_64")
    pins = resolve(requirements, python)
    Path(cache).mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=cache))  # same file system: the rename is atomic
    try:
        _pip(python, "download", "--no-deps", "--quiet", "--dest", str(staging), *_target_args(), *pins)
        if not _complete(staging, pins):
            raise RuntimeError(f"pip downloaded {sorted(p.name for p in staging.glob('*'))}, not every one of {pins}")
        for stray in staging.iterdir():
            if not stray.name.endswith(".whl"):
                stray.unlink()
        (staging / LOCK_FILE).write_text("\n".join(pins) + "\n")
        if directory.exists():
            shutil.rmtree(directory)
        staging.rename(directory)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    say(f"  wheels: {len(pins)} packages downloaded into {directory}")
    return Wheelhouse(directory, tuple(pins))
