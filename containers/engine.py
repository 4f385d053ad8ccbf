"""The Docker engine the container tests and ``make stack`` need: one already running, or Debian's dockerd.

A machine without an engine gets ``dockerd --iptables=false`` (overlay2) started here and stopped, with the
containerd it starts, by their PIDs, also when its start fails or is interrupted; an engine that already answers
is used and left alone. Every failure is a ``ContainerError`` that names what
to install or set, raised within a bounded wait, never a hang.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from containers.processes import Proc, signal_all, tree, wait_gone

__all__ = [
    "ContainerError",
    "Engine",
    "bridge_gateway",
    "container_logs",
    "docker",
    "free_port",
    "require_emulation",
    "require_free_port",
    "run_once",
]

BINFMT = Path("/proc/sys/fs/binfmt_misc")
_QEMU = {"arm64": "qemu-aarch64", "x86_64": "qemu-x86_64"}
INSTALL_HINT = "install Debian's engine (apt-get install docker.io) or set DOCKER_HOST to a running engine"


class ContainerError(RuntimeError):
    """A container step failed; the message says what to install, set or free."""


def docker(*args: str, timeout: float = 120, check: bool = True, input: bytes | None = None) -> str:
    """Run the docker client and return its stdout; a failure names the command and its stderr."""
    client = shutil.which("docker")
    if client is None:
        raise ContainerError(f"no docker client on PATH: {INSTALL_HINT}")
    try:
        done = subprocess.run([client, *args], capture_output=True, timeout=timeout, input=input, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ContainerError(f"docker {' '.join(args[:3])} gave no answer within {timeout:.0f} s") from exc
    if check and done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip()[-2000:]
        raise ContainerError(f"docker {' '.join(args[:3])} failed ({done.returncode}): {err}")
    return done.stdout.decode(errors="replace")


def engine_answers(timeout: float = 10) -> bool:
    """True when the engine behind DOCKER_HOST (or the default socket) answers ``docker info``."""
    try:
        docker("info", "--format", "{{.ServerVersion}}", timeout=timeout)
    except ContainerError:
        return False
    return True


def free_port() -> int:
    """A loopback port nothing listens on now (the kernel's choice)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def require_free_port(port: int) -> None:
    """Raise a clear error when ``port`` on 127.0.0.1 is taken, before a container or server fails on it."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise ContainerError(f"port {port} on 127.0.0.1 is in use: stop what holds it or choose another") from exc


def require_emulation(arch: str, binfmt: Path = BINFMT) -> None:
    """Raise a clear error unless containers of ``arch`` can run here (natively, or through qemu's binfmt entry)."""
    machine = os.uname().machine
    if {"aarch64": "arm64"}.get(machine, machine) == arch:
        return
    entry = binfmt / _QEMU[arch]
    text = entry.read_text() if entry.is_file() else ""
    if not text.startswith("enabled") or "flags: " not in text or "F" not in text.split("flags: ", 1)[1].split()[0]:
        raise ContainerError(
            f"{arch} containers need emulation, and {entry} is not an enabled entry with the F flag: "
            "apt-get install qemu-user-static binfmt-support, then mount -t binfmt_misc binfmt_misc "
            f"{binfmt} and update-binfmts --enable"
        )


@dataclass
class Engine:
    """The engine in use; ``stop()`` ends only a daemon that ``start()`` itself launched, with its helpers."""

    state_dir: Path
    start_timeout: float = 60.0
    dockerd: str | None = field(default_factory=lambda: shutil.which("dockerd") or _sbin("dockerd"))
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    # dockerd and what it started (containerd runs in a session of its own), remembered while it lives:
    # once dockerd is gone, its children no longer show it as their parent.
    members: dict[int, Proc] = field(default_factory=dict, init=False)

    @property
    def started_here(self) -> bool:
        return self.process is not None

    def start(self) -> Engine:
        """Use the engine that answers, or launch dockerd and wait for it; any failure or interruption
        (Ctrl-C, SIGTERM made KeyboardInterrupt) stops what was launched before it propagates."""
        if engine_answers():
            return self
        if os.environ.get("DOCKER_HOST"):
            raise ContainerError(f"DOCKER_HOST={os.environ['DOCKER_HOST']} does not answer: start that engine")
        dockerd = self.dockerd
        if not dockerd:
            raise ContainerError(f"no Docker engine answers and no dockerd is installed: {INSTALL_HINT}")
        if os.geteuid() != 0:
            raise ContainerError("dockerd must start as root here: run as root, or start an engine and set DOCKER_HOST")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.state_dir / "dockerd.log"
        command = [dockerd, "--iptables=false", "--storage-driver=overlay2",
                   f"--pidfile={self.state_dir / 'dockerd.pid'}"]  # fmt: skip
        try:
            with log_path.open("ab") as log:  # its own session: the escalation signals its whole group
                self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            self._wait_until_it_answers(log_path)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_it_answers(self, log_path: Path) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            self._remember()
            if self.process.poll() is not None:
                raise ContainerError(
                    f"dockerd exited at start ({log_path}):\n{log_path.read_text(errors='replace')[-1500:]}"
                )
            if engine_answers(timeout=5):
                self._remember()
                return
            time.sleep(0.5)
        raise ContainerError(f"dockerd did not answer within {self.start_timeout:.0f} s; see {log_path}")

    def _remember(self) -> None:
        if self.process is not None:
            self.members.update((member.pid, member) for member in tree(self.process.pid))

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM to dockerd (it stops containerd); past ``timeout``, or when interrupted, SIGKILL to its
        process group and to every process of its tree that is left, each by PID."""
        process = self.process
        if process is None:
            return
        self._remember()
        try:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        finally:
            if process.poll() is None:  # not yet reaped, so its group ID is still its own
                os.killpg(process.pid, signal.SIGKILL)
            signal_all(self.members.values(), signal.SIGKILL)
            process.wait(timeout=10)
            wait_gone(self.members.values())
            self.process, self.members = None, {}

    def __enter__(self) -> Engine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _sbin(name: str) -> str | None:
    return f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None


def bridge_gateway() -> str:
    """The default bridge's gateway: this machine as containers on the bridge reach it."""
    out = docker("network", "inspect", "bridge", "--format", "{{json .IPAM.Config}}")
    config = json.loads(out)[0]
    if config.get("Gateway"):
        return str(config["Gateway"])
    return str(next(ipaddress.ip_network(config["Subnet"]).hosts()))  # Docker gives the gateway the first host


def container_logs(container: str, *, tail: int | None = None, timeout: float = 30) -> str:
    """The container's output, stdout then stderr (``docker logs`` keeps them apart, and a traceback is on
    stderr); within ``timeout``, and never an exception, since a crash report calls it."""
    client = shutil.which("docker") or "docker"
    command = [client, "logs", *(["--tail", str(tail)] if tail else []), container]
    try:
        done = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
    except (subprocess.TimeoutExpired, OSError) as exc:
        return f"(docker logs {container[:12]} gave no output: {exc})"
    return "\n".join(
        part for part in (done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")) if part
    )


def run_once(image: str, command: list[str], options: list[str], timeout: float = 120) -> tuple[int, str]:
    """``docker run OPTIONS IMAGE COMMAND`` to completion: (exit status, its stdout and stderr). Removed by its id."""
    container = docker("run", "-d", *options, image, *command, timeout=60).strip()
    try:
        status = int(docker("wait", container, timeout=timeout).strip())
        return status, container_logs(container)
    finally:
        docker("rm", "-f", container, check=False)
