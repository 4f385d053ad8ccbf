"""A daemon's processes as /proc shows them, each named by PID and start time, so that they can be stopped by PID.

dockerd starts containerd in a session of its own, so signalling dockerd's process group misses it: the tree
is found by parentage instead. A PID is signalled only while it still names the process that was seen (same
start time), never a later process that reuses the number.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Proc", "alive", "proc", "signal_all", "tree", "wait_gone"]

PROC = Path("/proc")


@dataclass(frozen=True)
class Proc:
    """One process: its PID and its start time (clock ticks after boot), which a reused PID does not share."""

    pid: int
    started: int


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first), or None when there is no such process."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return text.rpartition(")")[2].split()  # the command name may hold spaces and parentheses


def proc(pid: int) -> Proc | None:
    """The process ``pid`` names now, or None."""
    fields = _stat(pid)
    return Proc(pid, int(fields[19])) if fields else None


def alive(process: Proc) -> bool:
    """True while ``process`` runs: a zombie or a later process under the same PID is not it."""
    fields = _stat(process.pid)
    return fields is not None and int(fields[19]) == process.started and fields[0] not in ("Z", "X")


def tree(pid: int) -> list[Proc]:
    """``pid`` and every process descended from it (parents before children); empty when ``pid`` is gone."""
    root = proc(pid)
    if root is None:
        return []
    children: dict[int, list[Proc]] = {}
    for entry in PROC.iterdir():
        fields = _stat(int(entry.name)) if entry.name.isdigit() else None
        if fields:
            children.setdefault(int(fields[1]), []).append(Proc(int(entry.name), int(fields[19])))
    found, queue = [], [root]
    while queue:
        current = queue.pop(0)
        found.append(current)
        queue.extend(children.get(current.pid, []))
    return found


def signal_all(processes: Iterable[Proc], signum: int = signal.SIGKILL) -> None:
    """Send ``signum`` to each process that is still the one seen; those already gone are skipped.

    The PID is pinned with a pidfd before its start time is checked, so the signal cannot reach a successor.
    """
    for process in processes:
        try:
            handle = os.pidfd_open(process.pid)
        except ProcessLookupError:
            continue
        try:
            if alive(process):
                signal.pidfd_send_signal(handle, signum)
        except ProcessLookupError:
            pass
        finally:
            os.close(handle)


def wait_gone(processes: Iterable[Proc], timeout: float = 10.0) -> list[Proc]:
    """Wait until none of ``processes`` runs (a signal is delivered, not yet acted on, when kill returns);
    the ones still running after ``timeout``."""
    deadline = time.monotonic() + timeout
    while (left := [process for process in processes if alive(process)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left
