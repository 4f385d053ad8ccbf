"""Closed-loop client load: a fixed number of calls shared by client threads, each on its own connection.

The load benchmarks (endpoint_load.py, local_server_load.py, weaviate_import.py) measure the same way: every
thread opens its session and warms it up, then all start together, take the next call number until none is
left, and the wall clock runs from that start to the last answer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TypeVar

Session = TypeVar("Session")


def run_clients(
    concurrency: int,
    total: int,
    connect: Callable[[], AbstractContextManager[Session]],
    call: Callable[[Session, int], float],
    warm_up: Callable[[Session], object] | None = None,
    max_seconds: float | None = None,
) -> tuple[float, list[float]]:
    """``call(session, n)`` for n in ``range(total)`` from ``concurrency`` threads; (wall seconds, latencies).

    ``call`` returns its own latency in seconds, so a caller decides what it times. A thread that fails stops
    the run (its error is raised after the others end), so a figure never counts calls that did not happen.
    With ``max_seconds`` no call starts after that long, and the figures cover the calls made by then.
    """
    latencies: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    counter = iter(range(total))
    started: list[float] = []  # set once every thread is ready, before any is released
    barrier = threading.Barrier(concurrency + 1, action=lambda: started.append(time.perf_counter()))

    def worker() -> None:
        try:
            with connect() as session:
                if warm_up is not None:
                    warm_up(session)
                barrier.wait()
                while True:
                    with lock:
                        n = next(counter, None)
                    if n is None or (max_seconds is not None and time.perf_counter() - started[0] > max_seconds):
                        return
                    took = call(session, n)
                    with lock:
                        latencies.append(took)
        except BaseException as e:  # reported after the run, never swallowed
            errors.append(e)
            barrier.abort()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    barrier.wait()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started[0] if started else 0.0
    if errors:
        raise RuntimeError(f"{len(errors)} client thread(s) failed: {errors[0]!r}")
    return seconds, latencies
