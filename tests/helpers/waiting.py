"""Polling for a condition that another thread or process makes true, bounded so a broken test fails, not hangs."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.005) -> None:
    """Return once ``predicate()`` is true; fail the test if it is still false after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(interval)
