"""Batch Transform and inference-component estimates: instance time, start-up (or wake) included, priced."""

from __future__ import annotations

import pytest

from omnisearch_embed.errors import InvalidInputError
from omnisearch_ops.costs import (
    BATCH_TRANSFORM_PRICES,
    BATCH_TRANSFORM_STARTUP_SECONDS,
    SCALE_IN_MINUTES,
    batch_transform_estimate,
    burst_estimate,
    burst_hours,
    component_table,
)


def test_four_instances_share_the_items_and_each_pays_its_start_up():
    est = batch_transform_estimate("ml.g4dn.xlarge", items=100_000, items_per_second=150, instance_count=4)
    seconds = BATCH_TRANSFORM_STARTUP_SECONDS + 100_000 / (150 * 4)
    assert est.seconds == pytest.approx(seconds)
    assert est.instance_hours == pytest.approx(seconds * 4 / 3600)
    assert est.usd == round(seconds * 4 / 3600 * BATCH_TRANSFORM_PRICES["ml.g4dn.xlarge"], 2)


def test_more_instances_finish_sooner_but_pay_more_start_up():
    one = batch_transform_estimate("ml.g5.xlarge", items=10_000, items_per_second=100)
    four = batch_transform_estimate("ml.g5.xlarge", items=10_000, items_per_second=100, instance_count=4)
    assert four.seconds < one.seconds and four.instance_hours > one.instance_hours


def test_an_unlisted_instance_needs_a_price():
    with pytest.raises(InvalidInputError) as caught:
        batch_transform_estimate("ml.inf2.xlarge", items=1, items_per_second=1)
    assert caught.value.code == "unknown_instance_type"
    assert batch_transform_estimate("ml.inf2.xlarge", items=3600, items_per_second=1, price_per_hour=1.0).usd == round(
        (BATCH_TRANSFORM_STARTUP_SECONDS + 3600) / 3600, 2
    )


@pytest.mark.parametrize(
    "kwargs", [{"items": -1}, {"items_per_second": 0}, {"instance_count": 0}, {"startup_seconds": -1}]
)
def test_nonsense_is_refused(kwargs):
    args = {"items": 10, "items_per_second": 1.0, **kwargs}
    with pytest.raises(InvalidInputError):
        batch_transform_estimate("ml.m5.large", **args)


def test_a_burst_bills_its_wake_itself_and_the_scale_in_delay():
    assert burst_hours(2, 15, 6) == pytest.approx(2 * (6 + 15 + SCALE_IN_MINUTES) / 60)
    assert burst_hours(0, 15) == 0 and burst_hours(1000, 15) == 24.0  # bursts that close merge: 24 h at most
    idle = burst_estimate("ml.g4dn.xlarge", bursts_per_day=0, label="idle")
    assert (idle.instance_hours, idle.monthly_usd, idle.label) == (0, 0, "idle")


@pytest.mark.parametrize(
    "call",
    [
        lambda: burst_hours(-1, 15),
        lambda: burst_hours(1, 15, wake_minutes=-1),
        lambda: burst_estimate("ml.g4dn.xlarge", bursts_per_day=0, days_per_month=40),
        lambda: burst_estimate("ml.inf2.xlarge", bursts_per_day=1),  # no price on file
        lambda: component_table(min_copies=3, max_instances=2),
    ],
)
def test_burst_nonsense_is_refused(call):
    with pytest.raises(InvalidInputError):
        call()
