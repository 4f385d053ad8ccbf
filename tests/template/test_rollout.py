"""Model rollouts AWS accepts for every samconfig environment, and the serverless endpoint option.

SageMaker's rule (AWS::SageMaker::Endpoint TrafficRoutingConfig): a canary must be at most 50% of the
variant's instance count, a linear step 10-50%. With RetainAllVariantProperties the fleet at deploy time
is whatever autoscaling chose, anywhere from MinInstances to MaxInstances, so every size must pass.
"""

from __future__ import annotations

import math
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.template.conftest import Stack

ROOT = Path(__file__).resolve().parents[2]
SAMCONFIG = tomllib.loads((ROOT / "samconfig.toml").read_text())
ENVIRONMENTS = [env for env, config in SAMCONFIG.items() if isinstance(config, dict) and "deploy" in config]


def overrides(env: str) -> dict[str, str]:
    raw = SAMCONFIG[env]["deploy"]["parameters"]["parameter_overrides"]
    return dict(item.split("=", 1) for item in (shlex.split(raw) if isinstance(raw, str) else raw))


def instances(size: dict[str, Any], fleet: int) -> int:
    value = int(size["Value"])
    return value if size["Type"] == "INSTANCE_COUNT" else math.ceil(fleet * value / 100)


def accepted(routing: dict[str, Any], fleet: int) -> bool:
    """What SageMaker accepts for a fleet of ``fleet`` instances (serverless: ALL_AT_ONCE only, no sizes)."""
    kind = routing["Type"]
    if kind == "ALL_AT_ONCE":
        return "CanarySize" not in routing and "LinearStepSize" not in routing
    if kind == "CANARY":
        return 1 <= instances(routing["CanarySize"], fleet) <= fleet / 2
    if kind == "LINEAR":
        return 0.1 * fleet <= instances(routing["LinearStepSize"], fleet) <= fleet / 2
    return False


def test_the_rule_itself() -> None:
    canary = {"Type": "CANARY", "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 25}, "WaitIntervalInSeconds": 1}
    assert not accepted(canary, 1)  # the old setting: a quarter of one instance rounds up to all of it
    assert accepted(canary, 4) and not accepted(
        {"Type": "CANARY", "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 2}}, 3
    )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_environment_rolls_out_in_a_way_sagemaker_accepts(make_stack: Any, env: str) -> None:
    params = overrides(env)
    stack: Stack = make_stack(**params)
    config = stack.props("Endpoint")["DeploymentConfig"]
    routing = config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert config["AutoRollbackConfiguration"]["Alarms"] == [{"AlarmName": "<EndpointErrorsAlarm>"}]
    policy = config["BlueGreenUpdatePolicy"]
    assert int(policy["MaximumExecutionTimeoutInSeconds"]) > int(routing["WaitIntervalInSeconds"]) + int(
        policy["TerminationWaitInSeconds"]
    )
    if stack.condition("IsServerless"):
        assert routing["Type"] == "ALL_AT_ONCE"
        return
    low, high = int(stack.params["MinInstances"]), int(stack.params["MaxInstances"])
    for fleet in range(low, high + 1):
        assert accepted(routing, fleet), (env, fleet, routing)


@pytest.mark.parametrize(("minimum", "kind"), [("1", "ALL_AT_ONCE"), ("2", "CANARY"), ("3", "CANARY")])
def test_a_fleet_of_two_or_more_gets_a_one_instance_canary(make_stack: Any, minimum: str, kind: str) -> None:
    stack = make_stack(MinInstances=minimum, MaxInstances="6")
    routing = stack.props("Endpoint")["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing["Type"] == kind
    assert all(accepted(routing, fleet) for fleet in range(int(minimum), 7))


def test_a_serverless_endpoint_is_cpu_scales_to_zero_and_has_no_autoscaling(make_stack: Any) -> None:
    stack = make_stack(EndpointKind="serverless", ServerlessMemoryMB="4096", ServerlessMaxConcurrency="8")
    (variant,) = stack.props("EndpointConfig")["ProductionVariants"]
    assert variant == {
        "VariantName": "AllTraffic",
        "ModelName": "<ServerlessModel.ModelName>",
        "ServerlessConfig": {"MemorySizeInMB": "4096", "MaxConcurrency": "8"},
    }
    assert "cpu" in stack.props("ServerlessModel")["PrimaryContainer"]["Image"]
    assert not stack.condition("IsRealtime")  # the scalable target and policy are not created
    for name in ("EndpointScalableTarget", "EndpointScalingPolicy"):
        assert stack.resources[name]["Condition"] == "IsRealtime"


def test_the_serverless_fallback_serves_the_same_archive_and_model(make_stack: Any) -> None:
    stack = make_stack(FallbackMode="serverless")
    assert stack.condition("HasServerlessFallback") and stack.condition("IsRealtime")
    gpu, cpu = stack.props("Model")["PrimaryContainer"], stack.props("ServerlessModel")["PrimaryContainer"]
    assert cpu["ModelDataUrl"] == gpu["ModelDataUrl"]
    for name in ("CLIP_MODEL", "CLIP_PRETRAINED", "SAGEMAKER_PROGRAM"):
        assert cpu["Environment"][name] == gpu["Environment"][name]
    fallback = stack.props("ServerlessFallbackEndpoint")
    assert fallback["EndpointName"] == "omnisearch-embed-dev-serverless"
    (variant,) = stack.props("ServerlessFallbackEndpointConfig")["ProductionVariants"]
    assert set(variant["ServerlessConfig"]) == {"MemorySizeInMB", "MaxConcurrency"}
    env = stack.props("EmbedFunction")["Environment"]["Variables"]
    assert env["FALLBACK"] == fallback["EndpointName"]
    invoke = next(p for p in stack.props("EmbedFunctionRole")["Policies"] if p["PolicyName"] == "invoke-endpoint")
    resources = invoke["PolicyDocument"]["Statement"][0]["Resource"]
    assert resources[-1].endswith(":endpoint/omnisearch-embed-dev-serverless")


def test_without_a_serverless_option_nothing_serverless_is_created(stack: Any) -> None:
    for name in ("ServerlessModel", "ServerlessFallbackEndpointConfig", "ServerlessFallbackEndpoint"):
        assert not stack.condition(stack.resources[name]["Condition"]), name
    assert stack.props("EmbedFunction")["Environment"]["Variables"]["FALLBACK"] == "none"


def test_a_serverless_stack_cannot_also_fall_back_to_serverless(template: dict) -> None:
    rule = template["Rules"]["ServerlessFallbackNeedsARealtimeEndpoint"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "EndpointKind"}, "serverless"]}
    assert rule["Assertions"][0]["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "FallbackMode"}, "serverless"]}]}
