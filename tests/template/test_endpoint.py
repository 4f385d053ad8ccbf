"""The SageMaker model, endpoint and its autoscaling."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def test_model_runs_inference_py_from_the_archive(stack: Any) -> None:
    props = stack.props("Model")
    container = props["PrimaryContainer"]
    assert props["ExecutionRoleArn"] == "<SageMakerExecutionRole.Arn>"
    assert container["ModelDataUrl"] == "s3://omni-models/clip/vit-b-32/model.tar.gz"
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert container["Environment"]["CLIP_MODEL"] == "ViT-B-32"
    assert container["Environment"]["CLIP_PRETRAINED"] == "openai"


def test_default_image_is_the_dlc_the_model_code_is_pinned_for(template: dict) -> None:
    default = template["Parameters"]["InferenceImage"]["Default"]
    assert re.fullmatch(template["Parameters"]["InferenceImage"]["AllowedPattern"], default)
    requirements = ROOT / "model_code" / "code" / "requirements.txt"
    assert requirements.exists(), "model_code/code/requirements.txt names the DLC (line '# DLC: <image>')"
    dlc_lines = [line for line in requirements.read_text().splitlines() if line.startswith("# DLC:")]
    assert dlc_lines, "model_code/code/requirements.txt has no '# DLC:' line"
    named = dlc_lines[0].removeprefix("# DLC:").strip()
    # The requirements may name the image for any region; the repository and tag must match.
    assert default.split("/", 1)[1] == named.split("/", 1)[1]


def test_the_serving_container_is_ours_by_default_and_the_toolkit_on_request(make_stack: Any) -> None:
    ours = make_stack(EndpointServerImageTag="3f2c1e9").props("Model")["PrimaryContainer"]
    assert ours["Image"] == "123456789012.dkr.ecr.us-east-1.amazonaws.com/omnisearch-embed-endpoint:3f2c1e9"
    env = ours["Environment"]
    assert (env["ENDPOINT_MAX_BATCH_SIZE"], env["ENDPOINT_MAX_WAIT_MS"], env["ENDPOINT_MAX_QUEUE"]) == (
        "64",
        "5",
        "256",
    )
    stock = make_stack(ServingContainer="toolkit").props("Model")["PrimaryContainer"]
    assert stock["Image"].startswith("763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.6.0-gpu-py312")
    # the same archive either way: the container reads code/inference.py from ModelDataUrl
    assert ours["ModelDataUrl"] == stock["ModelDataUrl"] and stock["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"


def test_the_batching_settings_are_ones_the_server_accepts(make_stack: Any) -> None:
    from endpoint_server.cli import parse_args

    env = make_stack().props("Model")["PrimaryContainer"]["Environment"]
    args = parse_args(["serve"], {k: str(v) for k, v in env.items()})
    assert (args.max_batch_size, args.max_wait_ms, args.max_queue) == (64, 5.0, 256)


def test_endpoint_config_uses_the_instance_type_and_min_instances(make_stack: Any) -> None:
    stack = make_stack(InstanceType="ml.g5.xlarge", MinInstances="2", MaxInstances="6")
    (variant,) = stack.props("EndpointConfig")["ProductionVariants"]
    assert variant["VariantName"] == "AllTraffic"
    assert variant["ModelName"] == "<Model.ModelName>"
    assert variant["InstanceType"] == "ml.g5.xlarge"
    assert int(variant["InitialInstanceCount"]) == 2


def test_endpoint_name_matches_what_the_functions_call(stack: Any) -> None:
    endpoint = stack.props("Endpoint")
    assert endpoint["EndpointName"] == "omnisearch-embed-dev"
    for function in ("EmbedFunction", "MetricsFunction"):
        env = stack.props(function)["Environment"]["Variables"]
        assert env["SAGEMAKER_ENDPOINT_NAME"] == endpoint["EndpointName"], function


def test_model_updates_are_blue_green_with_rollback_on_endpoint_errors(stack: Any) -> None:
    endpoint = stack.props("Endpoint")
    # A model update keeps the instance count autoscaling chose.
    assert endpoint["RetainAllVariantProperties"] is True
    policy = endpoint["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    # One instance by default: a canary would be all of it (tests/template/test_rollout.py has the rule).
    assert policy["TrafficRoutingConfiguration"]["Type"] == "ALL_AT_ONCE"
    assert endpoint["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"] == [
        {"AlarmName": "<EndpointErrorsAlarm>"}
    ]


def test_scalable_target_spans_min_to_max_instances(make_stack: Any) -> None:
    stack = make_stack(MinInstances="2", MaxInstances="6", Stage="prod")
    target = stack.props("EndpointScalableTarget")
    assert target == {
        "ServiceNamespace": "sagemaker",
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
        "ResourceId": "endpoint/<Endpoint.EndpointName>/variant/AllTraffic",
        "MinCapacity": "2",
        "MaxCapacity": "6",
    }


def test_default_scaling_is_one_to_four_instances(stack: Any) -> None:
    target = stack.props("EndpointScalableTarget")
    assert (int(target["MinCapacity"]), int(target["MaxCapacity"])) == (1, 4)


def test_target_tracking_on_invocations_per_instance_with_cooldowns(make_stack: Any) -> None:
    stack = make_stack(TargetInvocationsPerInstance="250")
    policy = stack.props("EndpointScalingPolicy")
    assert policy["PolicyType"] == "TargetTrackingScaling"
    assert policy["ScalingTargetId"] == "<EndpointScalableTarget>"
    config = policy["TargetTrackingScalingPolicyConfiguration"]
    assert config == {
        "TargetValue": "250",
        "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
        "ScaleOutCooldown": 300,
        "ScaleInCooldown": 600,
    }
    assert len(stack.created("AWS::ApplicationAutoScaling::ScalingPolicy")) == 1
