"""Monthly cost estimates for a SageMaker real-time endpoint: one table the deploy script and the docs share.

Assumptions (stated in every printout, so figures can be checked by hand):

* On-demand SageMaker real-time inference prices, region us-east-1, USD per instance-hour, as listed on
  aws.amazon.com/sagemaker/pricing when written. Prices change and differ per region: pass
  ``price_per_hour`` (``--price-per-hour``) to use your own.
* A month is 730 hours (365 days × 24 h / 12), AWS's own convention; ``days_per_month`` defaults to
  365 / 12 = 30.42 and "weekdays only" to 365 × 5 / 7 / 12 = 21.73.
* Only instance-hours: storage, data transfer, CloudWatch, Lambda and API Gateway are billed separately
  and are small next to a GPU instance.
* An inference component that scales to zero (EndpointKind components) bills its instance from the wake
  until the scale-in after the last request: ``burst_hours`` and ``component_table``.
* Serverless Inference bills the memory size for the seconds requests run (nothing while idle) plus the
  data in and out: ``SERVERLESS_PRICE_PER_GB_SECOND`` and ``SERVERLESS_PRICE_PER_GB_DATA``, us-east-1.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from omnisearch_embed.errors import InvalidInputError

PRICE_REGION = "us-east-1"
HOURS_PER_MONTH = 730.0
DAYS_PER_MONTH = 365 / 12
WEEKDAYS_PER_MONTH = 365 * 5 / 7 / 12

# USD per instance-hour, SageMaker real-time inference, on-demand, us-east-1.
INSTANCE_PRICES: dict[str, float] = {
    "ml.t2.medium": 0.056,
    "ml.m5.large": 0.115,
    "ml.m5.xlarge": 0.23,
    "ml.c5.xlarge": 0.204,
    "ml.c5.2xlarge": 0.408,
    "ml.g4dn.xlarge": 0.7364,
    "ml.g4dn.2xlarge": 1.0528,
    "ml.g5.xlarge": 1.408,
    "ml.g5.2xlarge": 1.515,
    "ml.p3.2xlarge": 3.825,
}


# SageMaker Serverless Inference, on-demand, us-east-1: USD per second per GB of memory (1 GB = 1024 MB;
# 6144 MB = $0.00012/s), and per GB of data processed (in + out).
SERVERLESS_PRICE_PER_GB_SECOND = 0.00002
SERVERLESS_PRICE_PER_GB_DATA = 0.016
SERVERLESS_MEMORY_SIZES = (1024, 2048, 3072, 4096, 5120, 6144)  # template.yaml ServerlessMemoryMB
# AWS Lambda, us-east-1: USD per GB-second of Duration (billed per millisecond, 1 GB = 1024 MB) by
# architecture, and per request.
LAMBDA_PRICE_PER_GB_SECOND = {"x86_64": 0.0000166667, "arm64": 0.0000133334}
LAMBDA_PRICE_PER_REQUEST = 0.20 / 1e6


@dataclass(frozen=True)
class ServerlessEstimate:
    """A month of a serverless endpoint: billed per second of inference, $0 while idle."""

    label: str
    memory_mb: int
    requests: float
    seconds_per_request: float
    kb_per_request: float = 4.0

    @property
    def compute_usd(self) -> float:
        return self.requests * self.seconds_per_request * self.memory_mb / 1024 * SERVERLESS_PRICE_PER_GB_SECOND

    @property
    def data_usd(self) -> float:
        return self.requests * self.kb_per_request / 1024**2 * SERVERLESS_PRICE_PER_GB_DATA

    @property
    def monthly_usd(self) -> float:
        return round(self.compute_usd + self.data_usd, 2)


def serverless_estimate(
    memory_mb: int = 6144,
    *,
    requests: float,
    seconds_per_request: float = 0.15,
    kb_per_request: float = 4.0,
    label: str = "serverless",
) -> ServerlessEstimate:
    """Monthly cost of ``requests`` invocations taking ``seconds_per_request`` each on ``memory_mb`` workers."""
    if memory_mb not in SERVERLESS_MEMORY_SIZES:
        raise InvalidInputError(
            f"serverless memory must be one of {SERVERLESS_MEMORY_SIZES} MB, got {memory_mb}", code="invalid_memory"
        )
    if requests < 0 or seconds_per_request <= 0 or kb_per_request < 0:
        raise InvalidInputError("requests, seconds and KB per request must be positive", code="invalid_usage")
    return ServerlessEstimate(label, memory_mb, requests, seconds_per_request, kb_per_request)


def serverless_table(memory_mb: int = 6144) -> list[ServerlessEstimate]:
    """The docs' serverless rows: an idle dev stack, light use, and a fallback that took real traffic."""
    rows = [("idle (dev stack, fallback never used)", 0), ("10,000 requests", 10_000), ("1 million requests", 1e6)]
    return [serverless_estimate(memory_mb, requests=n, label=label) for label, n in rows]


@dataclass(frozen=True)
class CostEstimate:
    """One scenario's inputs and its monthly figure, so a table row explains itself."""

    label: str
    instance_type: str
    price_per_hour: float
    hours_per_day: float
    days_per_month: float
    instances: float

    @property
    def instance_hours(self) -> float:
        return self.hours_per_day * self.days_per_month * self.instances

    @property
    def monthly_usd(self) -> float:
        return round(self.instance_hours * self.price_per_hour, 2)

    def to_dict(self) -> dict[str, float | str]:
        return {
            "label": self.label,
            "instance_type": self.instance_type,
            "price_per_hour": self.price_per_hour,
            "hours_per_day": self.hours_per_day,
            "days_per_month": round(self.days_per_month, 2),
            "instances": self.instances,
            "instance_hours": round(self.instance_hours, 1),
            "monthly_usd": self.monthly_usd,
        }


def hourly_price(instance_type: str, price_per_hour: float | None = None) -> float:
    """The table's price, or the caller's; an instance type we have no price for must be priced explicitly."""
    if price_per_hour is not None:
        if price_per_hour <= 0:
            raise InvalidInputError(f"price per hour must be positive, got {price_per_hour}", code="invalid_price")
        return price_per_hour
    try:
        return INSTANCE_PRICES[instance_type]
    except KeyError:
        known = ", ".join(sorted(INSTANCE_PRICES))
        raise InvalidInputError(
            f"no price on file for {instance_type!r} (known: {known}); pass a price per hour",
            code="unknown_instance_type",
        ) from None


def estimate(
    instance_type: str,
    *,
    hours_per_day: float = 24.0,
    instances: float = 1.0,
    days_per_month: float = DAYS_PER_MONTH,
    price_per_hour: float | None = None,
    label: str = "custom",
) -> CostEstimate:
    """Monthly cost of ``instances`` instances running ``hours_per_day`` on ``days_per_month`` days."""
    if not 0 < hours_per_day <= 24:
        raise InvalidInputError(f"hours per day must be in (0, 24], got {hours_per_day}", code="invalid_hours")
    if instances <= 0:
        raise InvalidInputError(f"instance count must be positive, got {instances}", code="invalid_instances")
    if not 0 < days_per_month <= 31:
        raise InvalidInputError(f"days per month must be in (0, 31], got {days_per_month}", code="invalid_days")
    return CostEstimate(
        label, instance_type, hourly_price(instance_type, price_per_hour), hours_per_day, days_per_month, instances
    )


def scenario_table(
    instance_type: str = "ml.g4dn.xlarge",
    *,
    min_instances: int = 1,
    max_instances: int = 2,
    price_per_hour: float | None = None,
) -> list[CostEstimate]:
    """The docs' table: dev hours, business hours, always on, and always on at the autoscaling maximum.

    The first three run ``min_instances``: a real-time endpoint never scales below its floor, so the floor is
    what an idle endpoint costs.
    """
    if not 1 <= min_instances <= max_instances:
        raise InvalidInputError(
            f"need 1 <= min instances <= max instances, got {min_instances} and {max_instances}",
            code="invalid_instances",
        )
    floor = "" if min_instances == 1 else f", {min_instances} instances (autoscaling min)"
    rows = [
        (f"dev: 4 h/day on weekdays{floor}", 4.0, WEEKDAYS_PER_MONTH, min_instances),
        (f"business hours: 10 h/day on weekdays{floor}", 10.0, WEEKDAYS_PER_MONTH, min_instances),
        (f"always on{floor or ', 1 instance'}", 24.0, DAYS_PER_MONTH, min_instances),
        (f"always on, {max_instances} instances (autoscaling max)", 24.0, DAYS_PER_MONTH, max_instances),
    ]
    return [
        estimate(instance_type, hours_per_day=h, days_per_month=d, instances=n, price_per_hour=price_per_hour, label=s)
        for s, h, d, n in rows
    ]


# --- Inference component scaled to zero (EndpointKind components) ------------------------------------------
# The stack's target tracking removes the last copy about this long after the last request; managed instance
# scaling then releases the instance. Until then the instance bills, idle or not.
SCALE_IN_MINUTES = 25.0
# An assumption: launching the instance, pulling the image and loading the model before the first answer.
# ``omnisearch-deploy info`` shows the last measured wake-up; pass it as --wake-minutes.
WAKE_MINUTES = 6.0
BURST_MINUTES = 15.0


def burst_hours(bursts_per_day: float, burst_minutes: float, wake_minutes: float = WAKE_MINUTES) -> float:
    """Instance-hours a day of ``bursts_per_day`` bursts: each bills its wake, itself and the scale-in delay.

    Bursts closer together than that merge into one run, so a day never bills more than 24 hours.
    """
    if bursts_per_day < 0 or burst_minutes < 0 or wake_minutes < 0:
        raise InvalidInputError("bursts, burst minutes and wake minutes must be >= 0", code="invalid_bursts")
    return min(24.0, bursts_per_day * (wake_minutes + burst_minutes + SCALE_IN_MINUTES) / 60)


def burst_estimate(
    instance_type: str,
    *,
    bursts_per_day: float,
    burst_minutes: float = BURST_MINUTES,
    wake_minutes: float = WAKE_MINUTES,
    days_per_month: float = DAYS_PER_MONTH,
    price_per_hour: float | None = None,
    label: str = "bursts",
) -> CostEstimate:
    """A month of bursts on one instance; no burst at all is the idle endpoint: no instance-hour, $0."""
    hours = burst_hours(bursts_per_day, burst_minutes, wake_minutes)
    month = estimate(
        instance_type, hours_per_day=hours or 24.0, days_per_month=days_per_month, price_per_hour=price_per_hour
    )
    return replace(month, hours_per_day=hours, label=label)  # estimate checks the rest; 0 hours is this row's own


def bursts_label(bursts: float, minutes: float) -> str:
    return f"{bursts:g} burst{'' if bursts == 1 else 's'} of {minutes:g} min a day"


def component_table(
    instance_type: str = "ml.g4dn.xlarge",
    *,
    min_copies: int = 0,
    max_instances: int = 2,
    wake_minutes: float = WAKE_MINUTES,
    price_per_hour: float | None = None,
) -> list[CostEstimate]:
    """The docs' rows: idle, one and four bursts a day on weekdays, and busy at the ceiling (one copy each).

    A floor of copies above 0 never sleeps: it runs around the clock, as a realtime endpoint's floor does.
    """
    if not 0 <= min_copies <= max_instances or max_instances < 1:
        raise InvalidInputError(
            f"need 0 <= min copies <= max instances, max at least 1; got {min_copies} and {max_instances}",
            code="invalid_instances",
        )
    ceiling = f"always busy, {max_instances} instances (MaxInstances)"
    if min_copies:
        floor = f"idle: MinInstances {min_copies} keeps copies up, never sleeps"
        rows = [estimate(instance_type, instances=min_copies, price_per_hour=price_per_hour, label=floor)]
    else:
        scenarios = [(0, "idle: no copy, no instance")]
        scenarios += [(n, f"{bursts_label(n, BURST_MINUTES)} on weekdays") for n in (1, 4)]
        rows = [
            burst_estimate(
                instance_type,
                bursts_per_day=n,
                wake_minutes=wake_minutes,
                days_per_month=WEEKDAYS_PER_MONTH,
                price_per_hour=price_per_hour,
                label=label,
            )
            for n, label in scenarios
        ]
    return [*rows, estimate(instance_type, instances=max_instances, price_per_hour=price_per_hour, label=ceiling)]


# --- SageMaker Batch Transform ------------------------------------------------------------------------------
# USD per instance-hour, Batch Transform, on-demand, us-east-1, as listed on aws.amazon.com/sagemaker/pricing
# when written (the same list prices as real-time inference for these types). Billed per second of instance
# time from launch to the end of the job, so a job also pays for start-up: launching the instances, pulling
# the container and loading the model.
BATCH_TRANSFORM_PRICES: dict[str, float] = {
    instance: price for instance, price in INSTANCE_PRICES.items() if not instance.startswith("ml.t2.")
}
BATCH_TRANSFORM_STARTUP_SECONDS = 360.0  # an assumption: about 6 minutes per job before the first record


@dataclass(frozen=True)
class BatchTransformEstimate:
    """One job's instance time and cost, from its size and an assumed per-instance throughput."""

    instance_type: str
    instance_count: int
    items: int
    items_per_second: float  # per instance
    price_per_hour: float
    startup_seconds: float

    @property
    def seconds(self) -> float:
        """Wall time: start-up, then the items shared evenly between the instances."""
        return self.startup_seconds + self.items / (self.items_per_second * self.instance_count)

    @property
    def instance_hours(self) -> float:
        return self.seconds * self.instance_count / 3600

    @property
    def usd(self) -> float:
        return round(self.instance_hours * self.price_per_hour, 2)


def batch_transform_estimate(
    instance_type: str,
    *,
    items: int,
    items_per_second: float,
    instance_count: int = 1,
    price_per_hour: float | None = None,
    startup_seconds: float = BATCH_TRANSFORM_STARTUP_SECONDS,
) -> BatchTransformEstimate:
    """Cost of embedding ``items`` with a Batch Transform job; unknown instance types must be priced."""
    if items < 0 or items_per_second <= 0 or instance_count < 1 or startup_seconds < 0:
        raise InvalidInputError(
            "items must be >= 0, throughput > 0, instance count >= 1 and start-up >= 0", code="invalid_estimate"
        )
    if price_per_hour is None and instance_type not in BATCH_TRANSFORM_PRICES:
        known = ", ".join(sorted(BATCH_TRANSFORM_PRICES))
        raise InvalidInputError(
            f"no Batch Transform price on file for {instance_type!r} (known: {known}); pass a price per hour",
            code="unknown_instance_type",
        )
    price = hourly_price(instance_type, price_per_hour) if price_per_hour is not None else None
    return BatchTransformEstimate(
        instance_type,
        instance_count,
        items,
        items_per_second,
        price if price is not None else BATCH_TRANSFORM_PRICES[instance_type],
        startup_seconds,
    )
