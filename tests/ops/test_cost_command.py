"""omnisearch-deploy cost: every option it takes changes the table, and the ones it has no use for are refused.

--kind components prices bursts (idle $0); --kind realtime, the default, instance-hours.
"""

from __future__ import annotations

import pytest

from omnisearch_embed.errors import InvalidInputError
from omnisearch_ops import deploy_cli
from omnisearch_ops.costs import (
    DAYS_PER_MONTH,
    SCALE_IN_MINUTES,
    WAKE_MINUTES,
    WEEKDAYS_PER_MONTH,
    scenario_table,
)

PRICE = 0.7364  # ml.g4dn.xlarge on file


def rows(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, str]:
    assert deploy_cli.main(list(argv)) == 0
    return {line.split("  ")[0]: line for line in capsys.readouterr().out.splitlines()}


def test_the_minimum_is_what_an_idle_endpoint_costs(capsys) -> None:
    one = rows(capsys, "cost")
    assert f"${PRICE * 730:,.2f}" in one["always on, 1 instance"]
    two = rows(capsys, "cost", "--min-instances", "2", "--max-instances", "4")
    assert "always on, 1 instance" not in two
    assert f"${PRICE * 730 * 2:,.2f}" in two["always on, 2 instances (autoscaling min)"]
    dev = two["dev: 4 h/day on weekdays, 2 instances (autoscaling min)"]
    assert f"${round(4 * WEEKDAYS_PER_MONTH * 2 * PRICE, 2):,.2f}" in dev
    assert f"${PRICE * 730 * 4:,.2f}" in two["always on, 4 instances (autoscaling max)"]


def test_your_scenario_starts_from_the_minimum(capsys) -> None:
    ours = rows(capsys, "cost", "--min-instances", "3", "--hours-per-day", "8")["your scenario"]
    assert f"${round(8 * DAYS_PER_MONTH * 3 * PRICE, 2):,.2f}" in ours
    ours = rows(capsys, "cost", "--min-instances", "3", "--hours-per-day", "8", "--instances", "1")["your scenario"]
    assert f"${round(8 * DAYS_PER_MONTH * PRICE, 2):,.2f}" in ours


@pytest.mark.parametrize(
    "flag, why",
    [
        (["--target-invocations", "100"], "instance-hours, not requests"),
        (["--region", "eu-west-1"], "--price-per-hour"),
        (["--profile", "work"], "calls no AWS API"),
        (["--endpoint-name", "omnisearch-embed-x"], "calls no AWS API"),
        (["--config-env", "prod"], "--min-instances"),
    ],
)
@pytest.mark.parametrize("form", ["subcommand", "old flag"])
def test_options_cost_has_no_use_for_are_refused(flag, why, form, capsys) -> None:
    argv = ["cost", *flag] if form == "subcommand" else ["--cost", *flag]
    with pytest.raises(SystemExit) as stopped:
        deploy_cli.main(argv)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert f"error: {flag[0]} does not apply to cost" in err and why in err


def test_a_minimum_above_the_maximum_is_refused(capsys) -> None:
    with pytest.raises(SystemExit) as stopped:
        deploy_cli.main(["cost", "--min-instances", "5"])  # the maximum defaults to template.yaml's 4
    assert stopped.value.code == 2 and "--min-instances <= --max-instances" in capsys.readouterr().err
    with pytest.raises(InvalidInputError):
        scenario_table("ml.g4dn.xlarge", min_instances=3, max_instances=2)


def minutes_month(bursts: float, minutes: float, days: float, wake: float = WAKE_MINUTES) -> str:
    """The monthly figure of ``bursts`` a day: each bills its wake, itself and the scale-in delay."""
    return f"${round(bursts * (wake + minutes + SCALE_IN_MINUTES) / 60 * days * PRICE, 2):,.2f}"


def test_an_idle_component_costs_nothing_and_each_burst_its_wake_to_scale_in(capsys) -> None:
    assert deploy_cli.main(["cost", "--kind", "components"]) == 0
    out = capsys.readouterr().out
    table = {line.split("  ")[0]: line for line in out.splitlines()}
    assert table["idle: no copy, no instance"].endswith("$0.00")
    assert minutes_month(1, 15, WEEKDAYS_PER_MONTH) in table["1 burst of 15 min a day on weekdays"]
    assert minutes_month(4, 15, WEEKDAYS_PER_MONTH) in table["4 bursts of 15 min a day on weekdays"]
    assert f"${PRICE * 730 * 4:,.2f}" in table["always busy, 4 instances (MaxInstances)"]
    assert f"(6 + 15 + 25) min x ${PRICE:.4f}/h = ${46 / 60 * PRICE:,.2f} per burst" in out
    assert "idle costs $0" in out and "serverless" not in out.lower().replace("endpointkind", "")


def test_your_bursts_are_priced_from_wake_to_scale_in(capsys) -> None:
    argv = ["cost", "--kind", "components", "--bursts-per-day", "3", "--burst-minutes", "20", "--wake-minutes", "8"]
    ours = rows(capsys, *argv)["your scenario: 3 bursts of 20 min a day"]
    assert minutes_month(3, 20, DAYS_PER_MONTH, wake=8) in ours
    ours = rows(capsys, "cost", "--kind", "components", "--bursts-per-day", "100")[
        "your scenario: 100 bursts of 15 min a day"
    ]
    assert f"${round(24 * DAYS_PER_MONTH * PRICE, 2):,.2f}" in ours  # bursts that merge bill 24 h at most
    ours = rows(capsys, "cost", "--kind", "components", "--burst-minutes", "5", "--days-per-month", "10")
    assert minutes_month(1, 5, 10) in ours["your scenario: 1 burst of 5 min a day"]


def test_a_component_floor_never_sleeps(capsys) -> None:
    table = rows(capsys, "cost", "--kind", "components", "--min-instances", "1", "--max-instances", "2")
    assert f"${PRICE * 730:,.2f}" in table["idle: MinInstances 1 keeps copies up, never sleeps"]
    assert not any("burst" in label for label in table)
    with pytest.raises(SystemExit) as stopped:
        deploy_cli.main(["cost", "--kind", "components", "--min-instances", "1", "--bursts-per-day", "2"])
    assert stopped.value.code == 2 and "never sleeps" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, why",
    [
        (["--kind", "components", "--hours-per-day", "8"], "does not apply to cost --kind components"),
        (["--kind", "components", "--instances", "2"], "does not apply to cost --kind components"),
        (["--bursts-per-day", "2"], "applies to cost --kind components only"),
        (["--kind", "realtime", "--wake-minutes", "5"], "applies to cost --kind components only"),
        (["--kind", "serverless"], "invalid choice"),
    ],
)
def test_each_kinds_figures_belong_to_it(argv, why, capsys) -> None:
    with pytest.raises(SystemExit) as stopped:
        deploy_cli.main(["cost", *argv])
    assert stopped.value.code == 2 and why in capsys.readouterr().err
