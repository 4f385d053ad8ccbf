"""Images built from Debian's packages where no registry can be pulled: debootstrap, then ``docker import``.

An image carries the hash of the recipe that made it (label ``omnisearch.recipe``); a build whose image already
holds the same hash is skipped, so only the first run on a machine pays for it.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from containers.engine import ContainerError, docker

__all__ = ["RECIPE_LABEL", "apt_mirror", "build_once", "debootstrap", "import_rootfs", "recipe_hash"]

RECIPE_LABEL = "omnisearch.recipe"
DEBIAN_ARCH = {"x86_64": "amd64", "arm64": "arm64"}
_FALLBACK_MIRROR = "http://deb.debian.org/debian"


def apt_mirror() -> str:
    """The Debian mirror this machine's apt uses (deb822 or one-line sources), else deb.debian.org."""
    for source in [*sorted(Path("/etc/apt").glob("sources.list.d/*.sources")), Path("/etc/apt/sources.list")]:
        text = source.read_text() if source.is_file() else ""
        found = re.search(r"^URIs:\s*(\S+/debian)/?\s*$", text, re.M)
        found = found or re.search(r"^deb\s+(\S+/debian)/?\s", text, re.M)
        if found:
            return found.group(1)
    return _FALLBACK_MIRROR


def recipe_hash(*parts: object) -> str:
    """A short hash of what decides an image's content (suite, packages, a recipe version the builder bumps)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def image_recipe(tag: str) -> str | None:
    """The recipe hash an existing image carries, or None when there is no such image."""
    out = docker("image", "inspect", "--format", f'{{{{index .Config.Labels "{RECIPE_LABEL}"}}}}', tag, check=False)
    return out.strip() or None


def build_once(tag: str, recipe: str, build: Callable[[], None], log: Callable[[str], None] = print) -> bool:
    """Run ``build`` unless ``tag`` already holds ``recipe``; True when it built."""
    if image_recipe(tag) == recipe:
        return False
    log(f"building {tag} (recipe {recipe}) ...")
    build()
    if image_recipe(tag) != recipe:
        raise ContainerError(f"building {tag} left no image labelled {RECIPE_LABEL}={recipe}")
    return True


def debootstrap(suite: str, target: Path, include: Iterable[str], arch: str = "x86_64") -> None:
    """A minbase Debian root in ``target``.

    A foreign architecture is only unpacked (``--foreign``, then every package's files with ``dpkg-deb -x``):
    configuring it would run each maintainer script under qemu, which takes tens of minutes here. What those
    scripts would make that the images need is made by the image recipes (the CA bundle).
    """
    tool = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    if not Path(tool).exists():
        raise ContainerError("debootstrap is missing: apt-get install debootstrap")
    foreign = arch != host_arch()
    command = [tool, "--variant=minbase", f"--arch={DEBIAN_ARCH[arch]}", f"--include={','.join(include)}"]
    command += ["--foreign"] if foreign else []
    _run([*command, suite, str(target), apt_mirror()], f"debootstrap {suite} ({arch})")
    if foreign:
        for line in (target / "debootstrap" / "debpaths").read_text().splitlines():
            package = target / line.split()[1].lstrip("/")
            _run(["dpkg-deb", "-x", str(package), str(target)], f"unpacking {package.name}")
        shutil.rmtree(target / "debootstrap")
    shutil.rmtree(target / "var/cache/apt/archives", ignore_errors=True)
    (target / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)


def host_arch() -> str:
    machine = subprocess.run(["uname", "-m"], capture_output=True, text=True, check=True).stdout.strip()
    return {"aarch64": "arm64"}.get(machine, machine)


def import_rootfs(root: Path, tag: str, recipe: str, arch: str, changes: Iterable[str]) -> None:
    """``root`` as a one-layer image with the given Dockerfile-like ``changes`` and the recipe label.

    The host's architecture streams into ``docker import``; another is written out for ``docker load``, because
    ``docker import --platform`` is ignored by some engines and a loaded image's config names its architecture.
    """
    changes = [*changes, f"LABEL {RECIPE_LABEL}={recipe}"]
    if arch == host_arch():
        flags = [f"--change={change}" for change in changes]
        tar = subprocess.Popen(["tar", "--numeric-owner", "--xattrs", "-C", str(root), "-c", "."],
                               stdout=subprocess.PIPE)  # fmt: skip
        try:
            done = subprocess.run(["docker", "import", *flags, "-", tag], stdin=tar.stdout, capture_output=True,
                                  check=False)  # fmt: skip
        finally:
            tar.stdout.close()  # type: ignore[union-attr]
            tar.wait()
        if done.returncode != 0 or tar.returncode != 0:
            raise ContainerError(f"docker import {tag} failed: {done.stderr.decode(errors='replace')[-2000:]}")
        return
    _load(root, tag, arch, changes)


def _load(root: Path, tag: str, arch: str, changes: list[str]) -> None:
    config = _config(arch, changes)
    with tempfile.TemporaryDirectory(prefix="omnisearch-image-") as work:
        layer = Path(work) / "layer.tar"
        _run(["tar", "--numeric-owner", "--xattrs", "-C", str(root), "-cf", str(layer), "."], f"tar {root}")
        config["rootfs"] = {"type": "layers", "diff_ids": [f"sha256:{_sha256(layer)}"]}
        config_bytes = json.dumps(config).encode()
        config_name = f"{hashlib.sha256(config_bytes).hexdigest()}.json"
        (Path(work) / config_name).write_bytes(config_bytes)
        manifest = [{"Config": config_name, "RepoTags": [tag], "Layers": ["layer.tar"]}]
        (Path(work) / "manifest.json").write_text(json.dumps(manifest))
        bundle = Path(work) / "image.tar"
        _run(["tar", "-C", work, "-cf", str(bundle), "manifest.json", config_name, "layer.tar"], "tar image")
        docker("load", "-i", str(bundle), timeout=900)


def _config(arch: str, changes: list[str]) -> dict:
    """An image config from Dockerfile-like lines: ``ENV K=V``, ``LABEL K=V``, ``WORKDIR``, ``CMD``/``ENTRYPOINT``."""
    env, labels, conf = [], {}, {}
    for change in changes:
        op, _, value = change.partition(" ")
        if op == "ENV":
            env.append(value)
        elif op == "LABEL":
            name, _, label = value.partition("=")
            labels[name] = label
        elif op == "WORKDIR":
            conf["WorkingDir"] = value
        elif op in ("CMD", "ENTRYPOINT"):
            conf["Cmd" if op == "CMD" else "Entrypoint"] = json.loads(value)
        else:
            raise ValueError(f"unsupported image change: {change}")
    conf.update(Env=env, Labels=labels)
    return {"architecture": DEBIAN_ARCH[arch], "os": "linux", "config": conf}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ContainerError(f"{what} failed ({done.returncode}):\n{(done.stdout + done.stderr)[-2000:]}")
