"""omnisearch-deploy cost: every option it takes changes the table, and the ones it has no use for are refused."""

from __future__ import annotations

import pytest

from omnisearch_embed.errors import InvalidInputError
from omnisearch_ops import deploy_cli
from omnisearch_ops.costs import DAYS_PER_MONTH, WEEKDAYS_PER_MONTH, scenario_table

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
