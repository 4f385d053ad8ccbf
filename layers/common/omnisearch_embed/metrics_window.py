"""The time window every metrics query covers: the last N whole hours, minute-aligned, and its resolution.

Shared by the metrics function, the monitor and the deploy script through
:mod:`omnisearch_embed.endpoint_metrics`; validated here so all three refuse the same bad ``hours``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from omnisearch_embed.errors import InvalidInputError

MIN_HOURS, MAX_HOURS = 1, 72
SERIES_PERIODS = (60, 300, 900, 3600)  # seconds; the smallest that keeps a series under MAX_POINTS
MAX_POINTS = 360

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Window:
    """The half-open interval [start, end), minute-aligned, and the series resolution."""

    start: datetime
    end: datetime
    hours: int
    period_seconds: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "hours": self.hours,
            "period_seconds": self.period_seconds,
        }


def utc_now() -> datetime:
    return datetime.now(UTC)


def validate_hours(hours: Any) -> int:
    """Whole hours in [MIN_HOURS, MAX_HOURS]; anything else is a 400 with code invalid_hours."""
    if isinstance(hours, bool) or not isinstance(hours, int) or not MIN_HOURS <= hours <= MAX_HOURS:
        raise InvalidInputError(
            f"hours must be a whole number from {MIN_HOURS} to {MAX_HOURS}, got {hours!r}",
            code="invalid_hours",
            param="hours",
        )
    return hours


def make_window(hours: int, clock: Clock = utc_now) -> Window:
    """The last ``hours`` up to the current minute (CloudWatch rounds recent start times to the minute)."""
    hours = validate_hours(hours)
    end = clock().astimezone(UTC).replace(second=0, microsecond=0)
    seconds = hours * 3600
    period = next((p for p in SERIES_PERIODS if seconds // p <= MAX_POINTS), SERIES_PERIODS[-1])
    return Window(start=end - timedelta(seconds=seconds), end=end, hours=hours, period_seconds=period)
