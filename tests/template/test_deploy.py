"""Safe deploys: canary traffic shifting gated by alarms, the alarms themselves, the dashboard."""

from __future__ import annotations

import json
from typing import Any

import pytest

from omnisearch_embed.endpoint_metrics import DEFAULT_FUNCTION_NAMESPACE, ENDPOINT_METRICS

CANARY_GATES = {
    "EmbedFunction": ["<Api5xxAlarm>", "<ApiLatencyP95Alarm>", "<EmbedFunctionErrorsAlarm>"],
    "MetricsFunction": ["<Api5xxAlarm>", "<MetricsFunctionErrorsAlarm>"],
    # Authorizer failures surface as API 5xx (AuthorizerConfigurationException); a missing key is
    # a raised "Unauthorized", i.e. a Lambda error by design, so its Errors metric cannot gate.
    "AuthorizerFunction": ["<Api5xxAlarm>"],
}
API_DIMENSIONS = [{"Name": "ApiName", "Value": "omnisearch-embed-dev"}, {"Name": "Stage", "Value": "dev"}]
ENDPOINT_DIMENSIONS = [
    {"Name": "EndpointName", "Value": "omnisearch-embed-dev"},
    {"Name": "VariantName", "Value": "AllTraffic"},
]


@pytest.mark.parametrize("function", sorted(CANARY_GATES))
def test_canary_deployment_rolls_back_on_alarms(stack: Any, function: str) -> None:
    group = stack.props(f"{function}DeploymentGroup")
    assert group["DeploymentConfigName"] == "CodeDeployDefault.LambdaCanary10Percent5Minutes"
    assert group["DeploymentStyle"] == {"DeploymentType": "BLUE_GREEN", "DeploymentOption": "WITH_TRAFFIC_CONTROL"}
    assert group["AlarmConfiguration"]["Enabled"] is True
    assert [a["Name"] for a in group["AlarmConfiguration"]["Alarms"]] == CANARY_GATES[function]
    assert "DEPLOYMENT_STOP_ON_ALARM" in group["AutoRollbackConfiguration"]["Events"]
    assert group["AutoRollbackConfiguration"]["Enabled"] is True
    # CodeDeploy moves the alias, which is what API Gateway invokes.
    alias = stack.resources[f"{function}Aliaslive"]
    assert alias["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]["DeploymentGroupName"] == {
        "Ref": f"{function}DeploymentGroup"
    }


def test_api_5xx_alarm(stack: Any) -> None:
    alarm = stack.props("Api5xxAlarm")
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Dimensions"]) == (
        "AWS/ApiGateway",
        "5XXError",
        API_DIMENSIONS,
    )
    # 5XXError's Average is the error rate.
    assert (alarm["Statistic"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
        "Average",
        0.05,
        "GreaterThanThreshold",
    )
    assert alarm["TreatMissingData"] == "notBreaching"


def test_api_p95_latency_alarm(stack: Any) -> None:
    alarm = stack.props("ApiLatencyP95Alarm")
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Dimensions"]) == (
        "AWS/ApiGateway",
        "Latency",
        API_DIMENSIONS,
    )
    assert alarm["ExtendedStatistic"] == "p95"
    assert "Statistic" not in alarm
    assert 0 < alarm["Threshold"] < 29_000


def test_api_alarm_dimensions_name_the_api_and_stage(stack: Any) -> None:
    assert stack.props("EmbedApi")["Name"] == API_DIMENSIONS[0]["Value"]
    assert stack.props("EmbedApiStage")["StageName"] == API_DIMENSIONS[1]["Value"]


def test_endpoint_errors_alarm_sums_model_errors_and_5xx(stack: Any) -> None:
    alarm = stack.props("EndpointErrorsAlarm")
    metrics = {m["Id"]: m for m in alarm["Metrics"]}
    assert [m["Id"] for m in alarm["Metrics"] if m["ReturnData"]] == ["errors"]
    assert metrics["errors"]["Expression"] == "FILL(model_errors, 0) + FILL(invocation_5xx, 0)"
    for metric_id, name in (("model_errors", "InvocationModelErrors"), ("invocation_5xx", "Invocation5XXErrors")):
        stat = metrics[metric_id]["MetricStat"]
        assert stat["Stat"] == "Sum"
        assert stat["Metric"] == {"Namespace": "AWS/SageMaker", "MetricName": name, "Dimensions": ENDPOINT_DIMENSIONS}
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


@pytest.mark.parametrize("function", ["EmbedFunction", "MetricsFunction"])
def test_function_alarms_watch_only_the_new_version(stack: Any, function: str) -> None:
    alarm = stack.props(f"{function}ErrorsAlarm")
    version = stack.prefixed(f"{function}Version", "AWS::Lambda::Version")
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == ("AWS/Lambda", "Errors", "Sum")
    assert alarm["Dimensions"] == [
        {"Name": "Resource", "Value": f"<{function}>:live"},
        {"Name": "FunctionName", "Value": f"<{function}>"},
        {"Name": "ExecutedVersion", "Value": f"<{version}.Version>"},
    ]
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")


def dashboard(stack: Any) -> dict[str, Any]:
    return json.loads(stack.props("Dashboard")["DashboardBody"])


def dashboard_metrics(stack: Any) -> set[tuple[str, str]]:
    found = set()
    for widget in dashboard(stack)["widgets"]:
        namespace = None
        for row in widget["properties"].get("metrics", []):
            names = [x for x in row if isinstance(x, str)]
            if not names:  # a metric-math or SEARCH expression: see test_dashboard_metrics.py
                continue
            if names[0] not in (".", "..."):
                namespace = names[0]
            if names[0] != "...":
                found.add((namespace, names[1]))
    return found


def test_dashboard_shows_what_the_monitor_script_shows(stack: Any) -> None:
    metrics = dashboard_metrics(stack)
    # The monitor script and GET /metrics report exactly ENDPOINT_METRICS (one shared core module).
    assert {(spec.namespace, spec.name) for spec in ENDPOINT_METRICS} <= metrics
    assert ("AWS/SageMaker", "InvocationModelErrors") in metrics
    assert {("AWS/ApiGateway", m) for m in ("Count", "4XXError", "5XXError", "Latency")} <= metrics
    # The embed function's own Powertools metrics: test_dashboard_metrics.py checks them against what it emits.
    namespace = stack.props("EmbedFunction")["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]
    assert namespace == DEFAULT_FUNCTION_NAMESPACE


def test_dashboard_names_this_endpoint_and_every_alarm(make_stack: Any) -> None:
    stack = make_stack(Stage="prod", MaxInstances="8")
    body = dashboard(stack)
    text = json.dumps(body)
    assert "omnisearch-embed-prod" in text
    assert "omnisearch-embed-dev" not in text
    counts = [w for w in body["widgets"] if w["properties"]["title"].startswith("Instance count")]
    assert {"label": "max", "value": 8} in counts[0]["properties"]["annotations"]["horizontal"]
    (alarms,) = [w for w in body["widgets"] if w["type"] == "alarm"]
    assert set(alarms["properties"]["alarms"]) == {f"<{n}.Arn>" for n in stack.created("AWS::CloudWatch::Alarm")}
