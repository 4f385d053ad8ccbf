"""The inference component (EndpointKind components): wake, sleep, and what info and the monitor show of it.

Real boto3 clients under Stubber (tests/ops/stubbed_aws.py): each AWS call's exact parameters are asserted.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from omnisearch_embed.component_copies import SCALABLE_DIMENSION, resource_id
from omnisearch_ops import deploy_cli, monitor
from omnisearch_ops.components import component_name, last_wake
from tests.ops.stubbed_aws import (
    WHEN,
    StubbedSession,
    component_description,
    endpoint_config,
    endpoint_description,
    expect_report,
    stubbed,
)

ENDPOINT = "omnisearch-embed-dev"
COMPONENT = "omnisearch-embed-dev-clip"
BY_NAME = {"InferenceComponentName": COMPONENT}
ACTIVITIES = {"ServiceNamespace": "sagemaker", "ResourceId": f"inference-component/{COMPONENT}"}
ACTIVITIES["ScalableDimension"] = "sagemaker:inference-component:DesiredCopyCount"


def test_the_component_is_named_after_its_endpoint() -> None:
    assert component_name(ENDPOINT) == COMPONENT
    assert resource_id(COMPONENT) == ACTIVITIES["ResourceId"]
    assert ACTIVITIES["ScalableDimension"] == SCALABLE_DIMENSION


def _copies(session: StubbedSession, desired: int, current: int) -> None:
    answer = component_description(COMPONENT, ENDPOINT, desired=desired, current=current)
    session.expect("sagemaker", "describe_inference_component", answer, BY_NAME)


def _update(session: StubbedSession, copies: int) -> None:
    params = {"InferenceComponentName": COMPONENT, "DesiredRuntimeConfig": {"CopyCount": copies}}
    answer = {"InferenceComponentArn": f"arn:aws:sagemaker:us-east-1:123456789012:inference-component/{COMPONENT}"}
    session.expect("sagemaker", "update_inference_component_runtime_config", answer, params)


@pytest.mark.parametrize(
    "argv, before, after",
    [
        (["wake"], (0, 0), 1),
        (["wake", "--copies", "2"], (1, 1), 2),
        (["--wake", "--copies", "2"], (1, 1), 2),  # the action flag form
        (["sleep"], (1, 1), 0),
        (["--sleep"], (1, 1), 0),
    ],
)
def test_wake_and_sleep_set_the_copy_count(monkeypatch, capsys, argv, before, after) -> None:
    with stubbed(monkeypatch, "sagemaker") as session:
        _copies(session, *before)
        _update(session, after)
        assert deploy_cli.main([*argv, "--config-env", "dev"]) == 0
        session.assert_done()
    out = capsys.readouterr().out
    copies = "1 copy" if after == 1 else f"{after} copies"
    desired = "1 copy" if before[0] == 1 else f"{before[0]} copies"
    assert (
        f"inference component {COMPONENT} (endpoint {ENDPOINT}): {desired} desired, {before[1]} running -> {copies}"
        in out
    )
    assert "instances follow: managed instance scaling" in out
    if after > before[0]:
        assert "autoscaling may scale it in again" in out and "25 minutes after the last request" in out
    else:
        assert "no copy, no instance: idle costs $0" in out and "autoscaling may scale it out again" in out


def test_a_count_already_desired_changes_nothing(monkeypatch, capsys) -> None:
    with stubbed(monkeypatch, "sagemaker") as session:
        _copies(session, 1, 0)  # waking: desired 1, none running yet; no update call is stubbed
        assert deploy_cli.main(["wake"]) == 0
        session.assert_done()
    assert "already 1 copy desired, 0 running; nothing to change" in capsys.readouterr().out


def test_an_endpoint_without_the_component_says_how_to_deploy_one(monkeypatch, capsys) -> None:
    with stubbed(monkeypatch, "sagemaker") as session, pytest.raises(SystemExit) as stopped:
        message = f"Could not find inference component {COMPONENT!r}."
        session.refuse("sagemaker", "describe_inference_component", "ValidationException", message, BY_NAME)
        deploy_cli.main(["sleep", "--config-env", "dev"])
    assert stopped.value.code == 1
    err = capsys.readouterr().err
    assert f"inference component {COMPONENT} does not exist" in err
    assert "EndpointKind is probably not components" in err
    assert "omnisearch-deploy deploy --kind components --min-instances 0 --config-env dev" in err


def test_a_refused_update_is_a_one_line_failure(monkeypatch, capsys) -> None:
    with stubbed(monkeypatch, "sagemaker") as session:
        _copies(session, 0, 0)
        message = "Cannot update inference component while it is in Updating state."
        session.refuse("sagemaker", "update_inference_component_runtime_config", "ValidationException", message)
        assert deploy_cli.main(["wake"]) == 1
    err = capsys.readouterr().err
    assert "ValidationException" in err and "Updating state" in err and "Traceback" not in err


def test_wake_needs_at_least_one_copy(capsys) -> None:
    with pytest.raises(SystemExit) as stopped:
        deploy_cli.main(["wake", "--copies", "0"])
    assert stopped.value.code == 2 and "sleep sets 0" in capsys.readouterr().err


def _activity(start_minute: int, seconds: int | None, change: str, status: str = "Successful") -> dict[str, Any]:
    start = WHEN + timedelta(minutes=start_minute)
    activity = {
        "ActivityId": f"a-{start_minute}",
        **ACTIVITIES,
        "Description": "Setting desired copy count.",
        "Cause": f"monitor alarm omnisearch-embed-dev-wake in state ALARM triggered policy wake changing the"
        f" desired capacity {change}.",
        "StartTime": start,
        "StatusCode": status,
    }
    if seconds is not None:
        activity["EndTime"] = start + timedelta(seconds=seconds)
    return activity


def _expect_activities(session: StubbedSession) -> None:
    """Two pages, newest first: scale-ins, a failed wake, a wake still going; the latest wake is on page two."""
    first = [
        _activity(300, 60, "from 1 to 0"),
        _activity(250, 100, "from 0 to 1", status="Failed"),
        _activity(240, None, "from 0 to 1", status="InProgress"),
        _activity(200, 45, "from 1 to 2"),  # more copies, not a wake
    ]
    second = [_activity(120, 372, "from 0 to 1"), _activity(10, 500, "from 0 to 1")]
    session.expect(
        "application-autoscaling",
        "describe_scaling_activities",
        {"ScalingActivities": first, "NextToken": "t"},
        ACTIVITIES,
    )
    session.expect(
        "application-autoscaling",
        "describe_scaling_activities",
        {"ScalingActivities": second},
        {**ACTIVITIES, "NextToken": "t"},
    )


def test_the_last_wake_is_the_latest_successful_raise_from_zero(monkeypatch) -> None:
    with stubbed(monkeypatch, "application-autoscaling") as session:
        _expect_activities(session)
        wake = last_wake(session.client("application-autoscaling"), COMPONENT)
        session.assert_done()
    assert wake is not None and (wake.seconds, wake.copies) == (372.0, 1)
    assert wake.start == (WHEN + timedelta(minutes=120)).isoformat()


def _expect_component(session: StubbedSession) -> None:
    """What the component's rows read after the report: its copies, the endpoint's instances, the last wake."""
    _copies(session, 1, 1)
    session.expect(
        "sagemaker", "describe_endpoint", endpoint_description(ENDPOINT, components=True), {"EndpointName": ENDPOINT}
    )
    _expect_activities(session)


def _rows(out: str) -> dict[str, str]:
    return {line.split("  ")[0]: line.split("  ", 1)[1].strip() for line in out.splitlines() if "  " in line}


def test_info_shows_copies_instances_the_last_wake_and_the_components_scaling(monkeypatch, capsys) -> None:
    target = {
        "ServiceNamespace": "sagemaker",
        "ResourceIds": [ACTIVITIES["ResourceId"]],
        "ScalableDimension": ACTIVITIES["ScalableDimension"],
    }
    policies = {key: ACTIVITIES[key] for key in ("ServiceNamespace", "ResourceId", "ScalableDimension")}
    step = {
        "PolicyARN": "arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:1",
        "PolicyName": "omnisearch-embed-dev-wake",
        **policies,
        "PolicyType": "StepScaling",
        "StepScalingPolicyConfiguration": {
            "AdjustmentType": "ChangeInCapacity",
            "Cooldown": 60,
            "StepAdjustments": [{"MetricIntervalLowerBound": 0.0, "ScalingAdjustment": 1}],
        },
        "CreationTime": WHEN,
    }
    tracking = {
        **step,
        "PolicyName": "omnisearch-embed-dev-concurrency",
        "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": 4.0,
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution"
            },
            "ScaleInCooldown": 300,
            "ScaleOutCooldown": 60,
        },
    }
    del tracking["StepScalingPolicyConfiguration"]
    scalable = {**policies, "MinCapacity": 0, "MaxCapacity": 2, "RoleARN": "arn:aws:iam::123456789012:role/r"}
    scalable["CreationTime"] = WHEN
    with stubbed(monkeypatch, "sagemaker", "cloudwatch", "application-autoscaling") as session:
        expect_report(session, ENDPOINT, components=True)
        _expect_component(session)
        scaling = "application-autoscaling"
        session.expect(scaling, "describe_scalable_targets", {"ScalableTargets": [scalable]}, target)
        session.expect(scaling, "describe_scaling_policies", {"ScalingPolicies": [step, tracking]}, policies)
        assert deploy_cli.main(["info", "--config-env", "dev"]) == 0
        session.assert_done()
    rows = _rows(capsys.readouterr().out)
    assert rows["Inference component"] == f"{COMPONENT} (InService)"
    assert rows["Copies (current/desired)"] == "1/1"
    assert rows["Instances now (managed min..max)"] == "1 (0..2, ENABLED)"
    start, end = WHEN + timedelta(minutes=120), WHEN + timedelta(minutes=120, seconds=372)
    assert rows["Last wake-up"] == f"6 min 12 s (0 -> 1 copy, {start.isoformat()} .. {end.isoformat()})"
    assert rows["Autoscaling min / max (copies)"] == "0 / 2"
    assert rows["Policy omnisearch-embed-dev-wake"] == "step +1 on its alarm, cooldown 60 s"
    concurrency = "target 4 concurrent requests/copy, cooldown out 60 s / in 300 s"
    assert rows["Policy omnisearch-embed-dev-concurrency"] == concurrency


@pytest.mark.parametrize("components", [False, True])
def test_info_on_an_endpoint_without_the_component_prints_as_before(monkeypatch, capsys, components) -> None:
    """A realtime endpoint costs no component call; one that names no model but has no component (gone) either."""
    variant = {
        "ServiceNamespace": "sagemaker",
        "ResourceIds": [f"endpoint/{ENDPOINT}/variant/AllTraffic"],
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
    }
    with stubbed(monkeypatch, "sagemaker", "cloudwatch", "application-autoscaling") as session:
        expect_report(session, ENDPOINT, components=components)
        if components:
            message = f"Could not find inference component {COMPONENT!r}."
            session.refuse("sagemaker", "describe_inference_component", "ValidationException", message, BY_NAME)
        session.expect("application-autoscaling", "describe_scalable_targets", {"ScalableTargets": []}, variant)
        assert deploy_cli.main(["info"]) == 0
        session.assert_done()
    out = capsys.readouterr().out
    rows = _rows(out)
    assert rows["Autoscaling"] == "not configured" and rows["Instances (current/desired)"] == "1/" + (
        "n/a" if components else "1"
    )
    assert "Inference component" not in out and "Copies" not in out and "wake" not in out


def test_monitor_shows_the_component_and_exports_it(monkeypatch, capsys, tmp_path: Path) -> None:
    services = ("sagemaker", "cloudwatch", "application-autoscaling")
    with stubbed(monkeypatch, *services) as session:
        expect_report(session, ENDPOINT, components=True)
        _expect_component(session)
        assert monitor.main(["--endpoint-name", ENDPOINT]) == 0
        session.assert_done()
    lines = capsys.readouterr().out.splitlines()
    labels = [line.split("  ")[0] for line in lines]
    at = labels.index("Instances (current/desired)")
    assert labels[at + 1 : at + 5] == [
        "Inference component",
        "Copies (current/desired)",
        "Instances now (managed min..max)",
        "Last wake-up",
    ]
    assert _rows("\n".join(lines))["Last wake-up"].startswith("6 min 12 s (0 -> 1 copy")
    target = tmp_path / "report.json"
    with stubbed(monkeypatch, *services) as session:
        expect_report(session, ENDPOINT, components=True)
        _expect_component(session)
        assert monitor.main(["--endpoint-name", ENDPOINT, "--export", str(target)]) == 0
    component = json.loads(target.read_text())["inference_component"]
    assert (component["name"], component["desired_copies"], component["max_instances"]) == (COMPONENT, 1, 2)
    assert component["last_wake"]["seconds"] == 372.0


def test_autoscale_refuses_an_endpoint_whose_copies_scale(monkeypatch, capsys) -> None:
    with stubbed(monkeypatch, "sagemaker", "application-autoscaling") as session, pytest.raises(SystemExit) as stopped:
        name = {"EndpointName": ENDPOINT}
        session.expect("sagemaker", "describe_endpoint", endpoint_description(ENDPOINT, components=True), name)
        session.expect("sagemaker", "describe_endpoint_config", endpoint_config(ENDPOINT, components=True))
        _copies(session, 0, 0)
        deploy_cli.main(["autoscale", "--max-instances", "3"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert f"serves inference component {COMPONENT}" in err and "deploy --kind components" in err
