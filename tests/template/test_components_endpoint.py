"""EndpointKind components: the GPU endpoint with the model as an inference component that scales to zero.

Every resource is asserted on the translated template, resolved for one parameter set (conftest's ``Stack``).
The Rules are evaluated here too (``refusals``): CloudFormation checks them before it creates anything, so a
combination they refuse never reaches SageMaker.
"""

from __future__ import annotations

import json
import shlex
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.template.conftest import Stack
from tests.template.test_dashboard_metrics import dashboard_rows
from tests.template.test_iam import RESOURCELESS, policies
from tests.template.test_parameters import accepts

ROOT = Path(__file__).resolve().parents[2]
COMPONENT = "omnisearch-embed-dev-clip"
COMPONENT_ARN = f"arn:aws:sagemaker:us-east-1:123456789012:inference-component/{COMPONENT}"
ENDPOINT_ARN = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/omnisearch-embed-dev"
COMPONENTS = {"EndpointKind": "components"}
# The floors a components stack is deployed with: left out (zero copies), a warm floor, and the model function
# answering while the GPU wakes.
FLOORS = [
    pytest.param({}, 0, id="left-out"),
    pytest.param({"MinInstances": "2"}, 2, id="two"),
    pytest.param({"FallbackMode": "function"}, 0, id="function-fallback"),
]
# vCPUs and memory (GiB) of the single-GPU instance types ComponentResources lists (EC2's published sizes).
INSTANCES = {
    "ml.g4dn.xlarge": (4, 16),
    "ml.g4dn.2xlarge": (8, 32),
    "ml.g5.xlarge": (4, 16),
    "ml.g5.2xlarge": (8, 32),
    "ml.g6.xlarge": (4, 16),
    "ml.g6.2xlarge": (8, 32),
    "ml.g6e.xlarge": (4, 32),
    "ml.g6e.2xlarge": (8, 64),
}


def components(make_stack: Any, **overrides: str) -> Stack:
    return make_stack(**COMPONENTS, **overrides)


def created(stack: Stack, name: str) -> bool:
    resource = stack.resources[name]
    return "Condition" not in resource or stack.condition(resource["Condition"])


# ---- the parameters ----------------------------------------------------------------------------------


def test_components_is_an_endpoint_kind_that_says_what_it_costs(template: dict) -> None:
    kind = template["Parameters"]["EndpointKind"]
    assert kind["AllowedValues"] == ["realtime", "serverless", "function", "components"]
    assert kind["Default"] == "realtime"
    description = kind["Description"]
    for words in ("components:", "$0 while idle", "wakes", "in minutes", "FallbackMode"):
        assert words in description, words


@pytest.mark.parametrize(
    ("name", "value", "ok"),
    [
        ("MinInstances", "", True),  # left out: the kind's own floor
        ("MinInstances", "0", True),  # components only (a Rule refuses it elsewhere)
        ("MinInstances", "2", True),
        ("MinInstances", "-1", False),
        ("MinInstances", "1.5", False),
        ("MinInstances", " 1", False),
        ("WakeOnRequest", "false", True),
        ("WakeOnRequest", "no", False),
        ("TargetConcurrentRequestsPerCopy", "1", True),
        ("TargetConcurrentRequestsPerCopy", "0", False),
        ("EndpointKind", "components", True),
    ],
)
def test_parameter_validation(template: dict, name: str, value: str, ok: bool) -> None:
    assert accepts(template["Parameters"][name], value) is ok


def test_new_parameter_defaults(template: dict) -> None:
    parameters = template["Parameters"]
    assert parameters["MinInstances"]["Default"] == ""
    assert parameters["MinInstances"]["Type"] == "String"
    assert parameters["WakeOnRequest"]["Default"] == "true"
    assert parameters["TargetConcurrentRequestsPerCopy"]["Type"] == "Number"
    assert parameters["TargetConcurrentRequestsPerCopy"]["Default"] == 4
    assert (
        "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution"
        in (parameters["TargetConcurrentRequestsPerCopy"]["Description"])
    )


# ---- the endpoint config, the endpoint and the component ---------------------------------------------


@pytest.mark.parametrize(("overrides", "floor"), FLOORS)
def test_one_variant_without_a_model_that_scales_its_instances_to_zero(
    make_stack: Any, overrides: dict[str, str], floor: int
) -> None:
    stack = components(make_stack, MaxInstances="6", **overrides)
    config = stack.props("EndpointConfig")
    assert config["ExecutionRoleArn"] == "<SageMakerExecutionRole.Arn>"
    (variant,) = config["ProductionVariants"]
    assert variant == {
        "VariantName": "AllTraffic",
        "InstanceType": "ml.g4dn.xlarge",
        # SageMaker creates the endpoint with an instance whatever the floor; managed scaling takes over.
        "InitialInstanceCount": 1,
        "ManagedInstanceScaling": {"Status": "ENABLED", "MinInstanceCount": 0, "MaxInstanceCount": "6"},
        "RoutingConfig": {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"},
    }
    assert not created(stack, "Model"), "the component brings its own container"


def test_the_other_kinds_keep_their_model_variant_and_no_config_role(make_stack: Any) -> None:
    for overrides in ({}, {"EndpointKind": "serverless"}, {"FallbackMode": "serverless"}):
        stack = make_stack(**overrides)
        config = stack.props("EndpointConfig")
        assert "ExecutionRoleArn" not in config
        (variant,) = config["ProductionVariants"]
        assert "ModelName" in variant and "ManagedInstanceScaling" not in variant


def test_the_endpoint_keeps_its_name_and_has_no_blue_green_for_components(make_stack: Any) -> None:
    endpoint = components(make_stack).props("Endpoint")
    assert endpoint["EndpointName"] == "omnisearch-embed-dev"
    assert endpoint["EndpointConfigName"] == "<EndpointConfig.EndpointConfigName>"
    assert "DeploymentConfig" not in endpoint, "the endpoint has no model variant to shift"
    assert "DeploymentConfig" in make_stack().props("Endpoint")


@pytest.mark.parametrize("serving", ["endpoint-server", "toolkit"])
def test_the_component_runs_the_realtime_models_container(make_stack: Any, serving: str) -> None:
    chosen = {"ServingContainer": serving, "EndpointServerImageTag": "3f2c1e9"}
    realtime = make_stack(**chosen).props("Model")["PrimaryContainer"]
    component = components(make_stack, **chosen).props("InferenceComponent")
    assert component["InferenceComponentName"] == COMPONENT
    assert component["EndpointName"] == "<Endpoint.EndpointName>"  # created after the endpoint, deleted before
    assert component["VariantName"] == "AllTraffic"
    container = component["Specification"]["Container"]
    assert container == {
        "Image": realtime["Image"],
        "ArtifactUrl": "s3://omni-models/clip/vit-b-32/model.tar.gz",
        "Environment": realtime["Environment"],
    }
    if serving == "endpoint-server":
        assert container["Image"] == "123456789012.dkr.ecr.us-east-1.amazonaws.com/omnisearch-embed-endpoint:3f2c1e9"
    else:
        assert container["Image"].startswith("763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:")
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert container["Environment"]["CLIP_MODEL"] == "ViT-B-32"
    assert "ModelName" not in component["Specification"]


def test_the_component_starts_one_copy_with_time_to_load_the_model(make_stack: Any) -> None:
    component = components(make_stack).props("InferenceComponent")
    assert component["RuntimeConfig"] == {"CopyCount": 1}  # SageMaker refuses 0 at creation
    assert component["Specification"]["StartupParameters"] == {
        "ModelDataDownloadTimeoutInSeconds": 600,
        "ContainerStartupHealthCheckTimeoutInSeconds": 600,
    }


@pytest.mark.parametrize(
    ("instance_type", "cores", "memory"), [("ml.g4dn.xlarge", 2, 1024), ("ml.g5.2xlarge", 4, 2048)]
)
def test_compute_requirements_follow_the_instance_type(
    make_stack: Any, instance_type: str, cores: int, memory: int
) -> None:
    component = components(make_stack, InstanceType=instance_type).props("InferenceComponent")
    assert component["Specification"]["ComputeResourceRequirements"] == {
        "NumberOfAcceleratorDevicesRequired": 1,
        "NumberOfCpuCoresRequired": cores,
        "MinMemoryRequiredInMb": memory,
    }


def test_every_listed_type_leaves_the_host_room(template: dict) -> None:
    table = template["Mappings"]["ComponentResources"]
    assert set(table) == set(INSTANCES)
    for instance_type, row in table.items():
        vcpus, gib = INSTANCES[instance_type]
        assert row["AcceleratorDevices"] == 1, instance_type  # one copy per single-GPU instance
        assert row["CpuCores"] <= vcpus / 2, instance_type
        assert row["MemoryMb"] <= gib * 1024 / 8, instance_type


# ---- autoscaling -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("overrides", "floor"), FLOORS)
def test_copies_scale_from_the_floor_to_max_instances(make_stack: Any, overrides: dict[str, str], floor: int) -> None:
    stack = components(make_stack, MaxInstances="6", **overrides)
    target = stack.props("ComponentScalableTarget")
    assert int(target.pop("MinCapacity")) == floor
    assert target == {
        "ServiceNamespace": "sagemaker",
        "ScalableDimension": "sagemaker:inference-component:DesiredCopyCount",
        "ResourceId": f"inference-component/{COMPONENT}",
        "MaxCapacity": "6",
    }
    # Registered only once the component exists (its name is spelled out, not referenced).
    assert stack.resources["ComponentScalableTarget"]["DependsOn"] == "InferenceComponent"


def test_copies_track_concurrent_requests_per_copy(make_stack: Any) -> None:
    stack = components(make_stack, TargetConcurrentRequestsPerCopy="6")
    policy = stack.props("ComponentScalingPolicy")
    assert policy["PolicyType"] == "TargetTrackingScaling"
    assert policy["ScalingTargetId"] == "<ComponentScalableTarget>"
    config = policy["TargetTrackingScalingPolicyConfiguration"]
    assert config["TargetValue"] == "6"
    assert config["PredefinedMetricSpecification"] == {
        "PredefinedMetricType": "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution"
    }


@pytest.mark.parametrize(("overrides", "floor"), FLOORS)
def test_a_request_at_zero_copies_adds_one(make_stack: Any, overrides: dict[str, str], floor: int) -> None:
    stack = components(make_stack, **overrides)
    policy = stack.props("ComponentWakePolicy")
    assert policy["PolicyType"] == "StepScaling"
    assert policy["ScalingTargetId"] == "<ComponentScalableTarget>"
    config = policy["StepScalingPolicyConfiguration"]
    assert config["AdjustmentType"] == "ChangeInCapacity"
    assert config["MetricAggregationType"] == "Maximum"
    assert config["StepAdjustments"] == [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]
    assert config["Cooldown"] >= 300, "one wake at a time: a copy takes minutes to start"

    alarm = stack.props("ComponentWakeAlarm")
    assert alarm["AlarmName"] == f"{COMPONENT}-wake"
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SageMaker", "NoCapacityInvocationFailures")
    assert alarm["Dimensions"] == [{"Name": "InferenceComponentName", "Value": COMPONENT}]
    # The first failed request wakes it: Maximum >= 1 in one period, not AWS's example Sum > 1.
    assert alarm["Statistic"] == "Maximum"
    assert alarm["Period"] in (30, 60)
    assert (alarm["EvaluationPeriods"], alarm["Threshold"]) == (1, 1)
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"
    # Ref of a scaling policy is its ARN: the alarm runs the step policy, which runs on the scalable target.
    assert alarm["AlarmActions"] == ["<ComponentWakePolicy>"]


def test_wake_on_request_false_leaves_out_the_alarm_and_the_step_policy(make_stack: Any) -> None:
    stack = components(make_stack, WakeOnRequest="false", MinInstances="1")
    assert not created(stack, "ComponentWakeAlarm") and not created(stack, "ComponentWakePolicy")
    assert created(stack, "ComponentScalableTarget") and created(stack, "ComponentScalingPolicy")
    assert int(stack.props("ComponentScalableTarget")["MinCapacity"]) == 1


@pytest.mark.parametrize(("overrides", "floor"), FLOORS)
def test_realtime_only_resources_are_absent(make_stack: Any, overrides: dict[str, str], floor: int) -> None:
    stack = components(make_stack, **overrides)
    for name in ("Model", "EndpointScalableTarget", "EndpointScalingPolicy"):
        assert not created(stack, name), name
    targets = stack.created("AWS::ApplicationAutoScaling::ScalableTarget")
    assert set(targets) == {"ComponentScalableTarget"}
    assert set(stack.created("AWS::ApplicationAutoScaling::ScalingPolicy")) == {
        "ComponentScalingPolicy",
        "ComponentWakePolicy",
    }


@pytest.mark.parametrize("kind", ["realtime", "serverless", "function"])
def test_the_other_kinds_create_no_component_resources(make_stack: Any, kind: str) -> None:
    stack = make_stack(EndpointKind=kind)
    for name in (
        "InferenceComponent",
        "ComponentScalableTarget",
        "ComponentScalingPolicy",
        "ComponentWakePolicy",
        "ComponentWakeAlarm",
    ):
        assert not created(stack, name), (kind, name)
    assert not stack.condition(stack.template["Outputs"]["InferenceComponentName"]["Condition"])


# ---- MinInstances left out ---------------------------------------------------------------------------


@pytest.mark.parametrize(("minimum", "instances", "routing"), [("", "1", "ALL_AT_ONCE"), ("3", "3", "CANARY")])
def test_a_realtime_floor_left_out_is_one_instance(make_stack: Any, minimum: str, instances: str, routing: str) -> None:
    stack = make_stack(MinInstances=minimum, MaxInstances="6")
    (variant,) = stack.props("EndpointConfig")["ProductionVariants"]
    assert variant["InitialInstanceCount"] == instances
    assert stack.props("EndpointScalableTarget")["MinCapacity"] == instances
    policy = stack.props("Endpoint")["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"]["Type"] == routing
    body = json.loads(stack.props("Dashboard")["DashboardBody"])
    (count,) = [w for w in body["widgets"] if w["properties"]["title"].startswith("Instance count")]
    assert {"label": "min", "value": int(instances)} in count["properties"]["annotations"]["horizontal"]


# ---- the functions and their roles -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "component"), [("components", COMPONENT), ("realtime", None), ("serverless", None), ("function", None)]
)
def test_the_functions_name_the_component_only_for_components(make_stack: Any, kind: str, component: Any) -> None:
    stack = make_stack(EndpointKind=kind)
    for function in ("EmbedFunction", "MetricsFunction"):
        env = stack.props(function)["Environment"]["Variables"]
        assert env.get("SAGEMAKER_INFERENCE_COMPONENT_NAME") == component, function
    if component:
        env = stack.props("EmbedFunction")["Environment"]["Variables"]
        assert env["SAGEMAKER_ENDPOINT_NAME"] == "omnisearch-embed-dev"
        assert "ENDPOINT_KIND" not in env  # the layer knows the endpoint kinds "sagemaker" covers


def test_the_embed_role_invokes_through_the_component_and_reads_its_copies(make_stack: Any) -> None:
    granted = policies(components(make_stack), "EmbedFunctionRole")
    assert granted["invoke-endpoint"] == [
        {"Effect": "Allow", "Action": ["sagemaker:InvokeEndpoint"], "Resource": sorted([ENDPOINT_ARN, COMPONENT_ARN])}
    ]
    assert granted["describe-inference-component"] == [
        {"Effect": "Allow", "Action": ["sagemaker:DescribeInferenceComponent"], "Resource": [COMPONENT_ARN]}
    ]
    assert "describe-inference-component" not in policies(make_stack(), "EmbedFunctionRole")


def test_the_embed_role_adds_the_fallback_endpoint_after_the_component(make_stack: Any) -> None:
    (invoke,) = policies(components(make_stack, FallbackMode="serverless"), "EmbedFunctionRole")["invoke-endpoint"]
    assert invoke["Resource"] == sorted([ENDPOINT_ARN, COMPONENT_ARN, f"{ENDPOINT_ARN}-serverless"])


def test_the_metrics_role_reads_the_copy_count_and_its_changes(make_stack: Any) -> None:
    statements = policies(components(make_stack), "MetricsFunctionRole")["read-endpoint-metrics"]
    assert statements[-2:] == [
        {"Effect": "Allow", "Action": ["sagemaker:DescribeInferenceComponent"], "Resource": [COMPONENT_ARN]},
        # no resource-level permission exists for this read-only action
        {"Effect": "Allow", "Action": ["application-autoscaling:DescribeScalingActivities"], "Resource": ["*"]},
    ]
    assert statements[1]["Action"] == ["sagemaker:DescribeEndpoint", "sagemaker:DescribeEndpointConfig"]
    assert len(policies(make_stack(), "MetricsFunctionRole")["read-endpoint-metrics"]) == 2


def test_the_sagemaker_role_writes_the_components_logs_and_metrics(make_stack: Any) -> None:
    logs, metrics = policies(components(make_stack), "SageMakerExecutionRole")["endpoint-logs-and-metrics"]
    group = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker"
    assert logs["Resource"] == [
        f"{group}/Endpoints/omnisearch-embed-dev:*",
        f"{group}/InferenceComponents/{COMPONENT}:*",
    ]
    assert metrics["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": ["/aws/sagemaker/Endpoints", "/aws/sagemaker/InferenceComponents"]}
    }


@pytest.mark.parametrize("overrides", [{}, {"FallbackMode": "serverless", "AllowedS3Buckets": "photos"}])
def test_no_other_wildcard(make_stack: Any, overrides: dict[str, str]) -> None:
    stack = components(make_stack, **overrides)
    for role, allowed in RESOURCELESS.items():
        for statement in (st for sts in policies(stack, role).values() for st in sts):
            for resource in statement["Resource"]:
                if resource == "*":
                    assert set(statement["Action"]) <= allowed, (role, statement)
                elif "*" in resource:
                    assert resource.endswith((":*", "/*")) and resource.count("*") == 1, (role, resource)


# ---- alarms, dashboard, outputs ----------------------------------------------------------------------


def test_endpoint_errors_count_the_components_errors(make_stack: Any) -> None:
    for overrides, dimensions in (
        (COMPONENTS, [{"Name": "InferenceComponentName", "Value": COMPONENT}]),
        (
            {},
            [{"Name": "EndpointName", "Value": "omnisearch-embed-dev"}, {"Name": "VariantName", "Value": "AllTraffic"}],
        ),
    ):
        metrics = make_stack(**overrides).props("EndpointErrorsAlarm")["Metrics"]
        stats = [m["MetricStat"]["Metric"] for m in metrics if "MetricStat" in m]
        assert {m["MetricName"] for m in stats} == {"InvocationModelErrors", "Invocation5XXErrors"}
        assert all(m["Dimensions"] == dimensions for m in stats), overrides


@pytest.mark.parametrize(("overrides", "floor"), FLOORS)
def test_the_dashboard_graphs_the_component(make_stack: Any, overrides: dict[str, str], floor: int) -> None:
    stack = components(make_stack, MaxInstances="6", **overrides)
    body = json.loads(stack.props("Dashboard")["DashboardBody"])
    sagemaker = [
        row for row in dashboard_rows(body) if row[0] in ("AWS/SageMaker", "/aws/sagemaker/InferenceComponents")
    ]
    assert all(row[2:] == ["InferenceComponentName", COMPONENT] for row in sagemaker), sagemaker
    plotted = {row[1] for row in sagemaker}
    assert {
        "Invocations",
        "ModelLatency",
        "Invocation5XXErrors",
        "InvocationModelErrors",
        "NoCapacityInvocationFailures",
        "GPUUtilizationNormalized",
    } <= plotted
    (copies,) = [w for w in body["widgets"] if w["properties"]["title"].startswith("Copies")]
    labels = [row[-1].get("label") for row in copies["properties"]["metrics"]]
    assert "copies" in labels
    horizontal = copies["properties"]["annotations"]["horizontal"]
    assert horizontal == [{"label": "max", "value": 6}, {"label": "min", "value": floor}]
    (alarms,) = [w for w in body["widgets"] if w["type"] == "alarm"]
    assert "<ComponentWakeAlarm.Arn>" in alarms["properties"]["alarms"]
    assert set(alarms["properties"]["alarms"]) == {f"<{n}.Arn>" for n in stack.created("AWS::CloudWatch::Alarm")}


def test_the_component_is_an_output_of_a_components_stack(make_stack: Any) -> None:
    stack = components(make_stack)
    output = stack.template["Outputs"]["InferenceComponentName"]
    assert stack.condition(output["Condition"])
    assert stack.resolve(output["Value"]) == COMPONENT == stack.props("InferenceComponent")["InferenceComponentName"]
    assert "zero" in output["Description"]


# ---- the Rules ---------------------------------------------------------------------------------------


class Rules:
    """CloudFormation's evaluation of a template's Rules for one parameter set (defaults for those not given)."""

    def __init__(self, template: Mapping[str, Any], given: Mapping[str, str]) -> None:
        self.rules = template["Rules"]
        parameters = template["Parameters"]
        self.values = {name: str(given.get(name, spec.get("Default", ""))) for name, spec in parameters.items()}

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.value(x) for x in node]
        if not isinstance(node, dict):
            return str(node) if isinstance(node, int | float) and not isinstance(node, bool) else node
        ((key, arg),) = node.items()
        if key == "Ref":
            return self.values[arg]
        if key == "Fn::Equals":
            left, right = (self.value(x) for x in arg)
            return left == right
        if key == "Fn::Not":
            return not self.value(arg[0])
        if key == "Fn::And":
            return all(self.value(x) for x in arg)
        if key == "Fn::Or":
            return any(self.value(x) for x in arg)
        if key == "Fn::Contains":
            items, item = (self.value(x) for x in arg)
            return item in items
        raise AssertionError(f"unsupported rule function {key}")

    def refusals(self) -> set[str]:
        """The rules whose condition holds and one of whose assertions fails."""
        refused = set()
        for name, rule in self.rules.items():
            if "RuleCondition" in rule and not self.value(rule["RuleCondition"]):
                continue
            if not all(self.value(assertion["Assert"]) for assertion in rule["Assertions"]):
                refused.add(name)
        return refused


def refusals(template: dict, **given: str) -> set[str]:
    return Rules(template, {"ModelDataUrl": "s3://b/k/model.tar.gz", **given}).refusals()


@pytest.mark.parametrize(
    ("given", "rule"),
    [
        ({"MinInstances": "0"}, "OnlyComponentsScaleToZero"),
        ({"EndpointKind": "serverless", "MinInstances": "0"}, "OnlyComponentsScaleToZero"),
        ({"EndpointKind": "components", "InstanceType": "ml.p3.2xlarge"}, "ComponentsNeedAKnownInstanceType"),
        ({"EndpointKind": "components", "InstanceType": "ml.g5.12xlarge"}, "ComponentsNeedAKnownInstanceType"),
        ({"EndpointKind": "components", "ServerlessMemoryMB": "4096"}, "ComponentsRunNoServerlessModelOfTheirOwn"),
        ({"EndpointKind": "components", "ServerlessMaxConcurrency": "8"}, "ComponentsRunNoServerlessModelOfTheirOwn"),
        ({"EndpointKind": "components", "ServerlessContainer": "toolkit"}, "ComponentsRunNoServerlessModelOfTheirOwn"),
        (
            {
                "EndpointKind": "components",
                "FallbackMode": "function",
                "ServerlessImage": "1.dkr.ecr.x.amazonaws.com/a:b",
            },
            "ComponentsRunNoServerlessModelOfTheirOwn",
        ),
        ({"EndpointKind": "components", "WakeOnRequest": "false"}, "ComponentsAtZeroCopiesNeedAWayToWake"),
        (
            {"EndpointKind": "components", "WakeOnRequest": "false", "MinInstances": "0"},
            "ComponentsAtZeroCopiesNeedAWayToWake",
        ),
        ({"EndpointKind": "serverless", "FallbackMode": "serverless"}, "ServerlessFallbackNeedsARealtimeEndpoint"),
        ({"EndpointKind": "function", "FallbackMode": "function"}, "AFunctionStackHasNoEndpointToBackUp"),
    ],
)
def test_bad_combinations_are_refused(template: dict, given: dict[str, str], rule: str) -> None:
    assert refusals(template, **given) == {rule}


@pytest.mark.parametrize(
    "given",
    [
        {},
        {"MinInstances": "1"},
        {"MinInstances": "3"},
        {"EndpointKind": "components"},
        {"EndpointKind": "components", "MinInstances": "0"},
        {"EndpointKind": "components", "MinInstances": "2", "InstanceType": "ml.g6e.xlarge"},
        {"EndpointKind": "components", "WakeOnRequest": "false", "MinInstances": "1"},
        {"EndpointKind": "components", "FallbackMode": "function"},
        {"EndpointKind": "components", "FallbackMode": "omnisearch-embed-prod-b"},
        # The serverless fallback answers while the GPU wakes, sized by the Serverless parameters.
        {"EndpointKind": "components", "FallbackMode": "serverless", "ServerlessMemoryMB": "2048"},
        {"EndpointKind": "serverless", "ServerlessMemoryMB": "4096"},
        {"ServerlessContainer": "toolkit"},  # only components checks the Serverless parameters
    ],
)
def test_good_combinations_pass(template: dict, given: dict[str, str]) -> None:
    assert refusals(template, **given) == set()


@pytest.mark.parametrize("instance_type", sorted(INSTANCES))
def test_the_rule_lists_exactly_the_mapped_instance_types(template: dict, instance_type: str) -> None:
    listed = template["Rules"]["ComponentsNeedAKnownInstanceType"]["Assertions"][0]["Assert"]["Fn::Contains"][0]
    assert sorted(listed) == sorted(template["Mappings"]["ComponentResources"])
    assert refusals(template, EndpointKind="components", InstanceType=instance_type) == set()
    description = template["Rules"]["ComponentsNeedAKnownInstanceType"]["Assertions"][0]["AssertDescription"]
    assert "ComponentResources" in description


@pytest.mark.parametrize("name", ["ServerlessMemoryMB", "ServerlessMaxConcurrency", "ServerlessContainer"])
def test_every_other_allowed_serverless_value_is_refused_with_components(template: dict, name: str) -> None:
    spec = template["Parameters"][name]
    others = [str(v) for v in spec.get("AllowedValues", [])] or [str(spec["Default"] + 1)]
    for value in (v for v in others if v != str(spec["Default"])):
        assert refusals(template, EndpointKind="components", **{name: value}) == {
            "ComponentsRunNoServerlessModelOfTheirOwn"
        }, value


def test_every_samconfig_environment_passes_the_rules(template: dict) -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    for env, settings in config.items():
        if isinstance(settings, dict) and "deploy" in settings:
            raw = settings["deploy"]["parameters"]["parameter_overrides"]
            overrides = dict(item.split("=", 1) for item in shlex.split(raw))
            assert refusals(template, **overrides) == set(), env
            # ... and would as a components stack with the kind's own floor.
            assert refusals(template, **{**overrides, "EndpointKind": "components", "MinInstances": ""}) == set(), env
