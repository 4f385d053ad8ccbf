"""A small thread-safe circuit breaker, so a dead primary endpoint costs one fast fallback, not a timeout per call.

closed: calls go to the primary; ``failure_threshold`` consecutive failures open the circuit.
open: calls skip the primary until ``cooldown_seconds`` have passed.
half_open: exactly one caller gets a trial permit; its success closes the circuit, its failure reopens it.
waking: the primary said it is starting (a model scaled to zero): no failure is counted, calls skip it as
while open, and after each cooldown one trial probes it; the first success closes the circuit. The probes
matter: a failed request is what wakes such a model, so they also keep the wake going.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"
WAKING = "waking"

PERMIT_NORMAL = "normal"
PERMIT_TRIAL = "trial"


class CircuitBreaker:
    def __init__(
        self, failure_threshold: int, cooldown_seconds: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if cooldown_seconds <= 0:
            raise ValueError("cooldown_seconds must be positive")
        self.failure_threshold = failure_threshold
        self.cooldown_seconds = cooldown_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False
        self._waking = False

    @property
    def state(self) -> str:
        with self._lock:
            return self._state

    @property
    def is_waking(self) -> bool:
        """The primary's last word was that it is starting (until a success or a real failure)."""
        with self._lock:
            return self._waking

    def acquire(self) -> str | None:
        """A permit to call the primary (``normal`` or the half-open ``trial``), or None: use the secondary."""
        with self._lock:
            if self._state == CLOSED:
                return PERMIT_NORMAL
            if self._state in (OPEN, WAKING) and self._clock() - self._opened_at >= self.cooldown_seconds:
                self._state = HALF_OPEN
            if self._state == HALF_OPEN and not self._trial_in_flight:
                self._trial_in_flight = True
                return PERMIT_TRIAL
            return None

    def success(self, permit: str) -> None:
        """The primary answered: whatever the state, it works again."""
        with self._lock:
            self._state, self._failures, self._trial_in_flight, self._waking = CLOSED, 0, False, False

    def failure(self, permit: str) -> None:
        """The primary failed for its own reasons."""
        with self._lock:
            self._waking = False
            if permit == PERMIT_TRIAL:
                self._trial_in_flight = False
                self._failures += 1
                self._open()
            elif self._state == CLOSED:
                self._failures += 1
                if self._failures >= self.failure_threshold:
                    self._open()
            # a call admitted before the circuit opened adds nothing once it is open

    def waking(self, permit: str) -> None:
        """The primary is starting, not failing: skip it for a cooldown, then probe again."""
        with self._lock:
            if permit == PERMIT_TRIAL:
                self._trial_in_flight = False
            if permit == PERMIT_TRIAL or self._state != WAKING:  # calls already in flight do not delay the probe
                self._state, self._waking = WAKING, True
                self._opened_at = self._clock()

    def release(self, permit: str) -> None:
        """The call said nothing about the primary's health (e.g. the caller's input was bad)."""
        with self._lock:
            if permit == PERMIT_TRIAL:
                self._trial_in_flight = False

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            info: dict[str, Any] = {
                "state": self._state,
                "consecutive_failures": self._failures,
                "failure_threshold": self.failure_threshold,
                "cooldown_seconds": self.cooldown_seconds,
                "waking": self._waking,
            }
            if self._state != CLOSED:
                info["open_for_seconds"] = round(self._clock() - self._opened_at, 3)
            return info

    def _open(self) -> None:
        self._state = OPEN
        self._opened_at = self._clock()
