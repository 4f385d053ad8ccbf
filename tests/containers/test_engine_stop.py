"""A dockerd started here ends with everything it started (containerd runs in a session of its own), also when its
start is interrupted, as Ctrl-C or SIGTERM (``make stack`` turns it into KeyboardInterrupt) interrupts it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from containers import engine as engine_module
from containers.engine import Engine
from containers.processes import Proc, alive, signal_all, tree


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short path: containerd's sockets under dockerd's exec root must fit a unix socket's 108 bytes."""
    with tempfile.TemporaryDirectory(prefix="oe-", dir="/tmp") as path:
        yield Path(path)


def _isolated_dockerd(folder: Path) -> Path:
    """Debian's dockerd with its own data, exec root, socket and network namespace, so that it runs beside the
    tests' engine: started with ``--bridge=none`` in the host's namespace, dockerd deletes the docker0 bridge that
    the tests' engine serves on. ``exec`` (and unshare's own exec) keep the PID that Engine started."""
    wrapper = folder / "dockerd"
    wrapper.write_text(
        "#!/bin/sh\n"
        f"exec unshare --net -- /usr/sbin/dockerd --data-root={folder}/data --exec-root={folder}/exec"
        f' --host=unix://{folder}/docker.sock --bridge=none "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper


def _unmount(folder: Path) -> None:
    """dockerd mounts its data root on itself; one killed before it could unmount leaves that mount behind."""
    for line in Path("/proc/mounts").read_text().splitlines():
        target = line.split()[1]
        if target.startswith(f"{folder}/"):
            subprocess.run(["umount", "--lazy", target], check=False)


def test_an_interrupted_start_leaves_no_dockerd_and_no_containerd(
    short_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not Path("/usr/sbin/dockerd").exists() or os.geteuid() != 0:
        pytest.fail("this test starts Debian's dockerd as root: make container-deps, and run as root")
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setattr(engine_module, "engine_answers", lambda timeout=10: False)  # the start never completes
    engine = Engine(short_dir / "state", start_timeout=120, dockerd=str(_isolated_dockerd(short_dir)))
    seen: dict[int, Proc] = {}

    def interrupt_once_containerd_runs() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            process = engine.process
            members = tree(process.pid) if process is not None else []
            seen.update((member.pid, member) for member in members)
            if len(members) >= 2:  # dockerd and the containerd it started
                os.kill(os.getpid(), signal.SIGTERM)
                return
            time.sleep(0.1)

    previous = signal.signal(signal.SIGTERM, _interrupt)  # as make stack does
    watcher = threading.Thread(target=interrupt_once_containerd_runs, daemon=True)
    try:
        watcher.start()
        with pytest.raises(KeyboardInterrupt):
            engine.start()
        watcher.join(timeout=10)
        assert len(seen) >= 2, "dockerd started no containerd within 60 s"
        assert [member for member in seen.values() if alive(member)] == []
        assert not engine.started_here
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal_all(seen.values(), signal.SIGKILL)
        if engine.process is not None:
            engine.process.wait(timeout=10)
        _unmount(short_dir)


def test_stop_kills_what_ignores_sigterm_also_in_a_session_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A daemon that ignores SIGTERM, with a helper in its own session (as dockerd's containerd): both are killed
    once the grace period is spent, though the helper is outside the daemon's process group."""
    ready = tmp_path / "ready"
    fake = tmp_path / "dockerd"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import signal, subprocess, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "helper = subprocess.Popen(['sleep', '300'], start_new_session=True)\n"
        f"open({str(ready)!r}, 'w').write(str(helper.pid))\n"
        "time.sleep(300)\n"
    )
    fake.chmod(0o755)
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setattr(engine_module, "engine_answers", lambda timeout=10: ready.exists())
    engine = Engine(tmp_path / "state", dockerd=str(fake))
    members: list[Proc] = []
    try:
        engine.start()
        assert engine.process is not None
        members = tree(engine.process.pid)
        helper = int(ready.read_text())
        assert helper in {member.pid for member in members}
        assert os.getsid(helper) != os.getsid(engine.process.pid)
        engine.stop(timeout=1)
        assert [member for member in members if alive(member)] == []
    finally:
        signal_all(members, signal.SIGKILL)
        engine.stop(timeout=1)
