"""ModelFunction in the template: created only for EndpointKind or FallbackMode function, the embed and metrics
functions told to use it, least privilege on it, and a function stack with no SageMaker in it at all."""

from __future__ import annotations

import json
from typing import Any

import pytest

from omnisearch_embed.settings import Settings

SAGEMAKER_TYPES = ("AWS::SageMaker::", "AWS::ApplicationAutoScaling::")


def created(stack: Any) -> dict[str, dict[str, Any]]:
    """The resources CloudFormation creates for the stack's parameters (their Condition true, or none)."""
    return {n: r for n, r in stack.resources.items() if "Condition" not in r or stack.condition(r["Condition"])}


def env(stack: Any, function: str) -> dict[str, str]:
    return stack.props(function)["Environment"]["Variables"]


def policy_actions(stack: Any, role: str) -> list[tuple[str, list[str]]]:
    """(action, resources) of every statement of the role's inline policies."""
    found = []
    for policy in stack.props(role)["Policies"]:
        for statement in stack.statements(policy["PolicyDocument"]):
            found += [(action, statement["Resource"]) for action in statement["Action"]]
    return found


@pytest.mark.parametrize(("overrides", "expected"), [
    ({}, False), ({"EndpointKind": "serverless"}, False), ({"FallbackMode": "serverless"}, False),
    ({"EndpointKind": "function"}, True), ({"FallbackMode": "function"}, True),
])  # fmt: skip
def test_the_model_function_exists_only_where_it_serves(make_stack: Any, overrides: dict, expected: bool) -> None:
    names = created(make_stack(**overrides))
    assert (
        {"ModelFunction", "ModelFunctionRole", "ModelLogGroup"} <= set(names)
        if expected
        else "ModelFunction" not in names
    )


def test_a_function_stack_has_no_sagemaker_resource_role_or_alarm(make_stack: Any) -> None:
    stack = make_stack(EndpointKind="function")
    names = created(stack)
    assert not [n for n, r in names.items() if r["Type"].startswith(SAGEMAKER_TYPES)]
    assert "SageMakerExecutionRole" not in names and "EndpointErrorsAlarm" not in names
    outputs = stack.template["Outputs"]
    assert not stack.condition(outputs["EndpointName"]["Condition"]) and "ModelFunctionName" in outputs
    body = json.loads(stack.props("Dashboard")["DashboardBody"])
    assert "AWS/SageMaker" not in json.dumps(body) and "omnisearch-embed-dev-model" in json.dumps(body)


def test_the_image_function_is_built_from_the_root_with_the_archive(make_stack: Any, template: dict) -> None:
    props = make_stack(EndpointKind="function", FunctionArchitecture="x86_64").props("ModelFunction")
    assert props["PackageType"] == "Image" and "Runtime" not in props and "Layers" not in props
    assert props["Architectures"] == ["x86_64"] and props["MemorySize"] >= 1769 and props["Timeout"] < 28
    metadata = template["Resources"]["ModelFunction"]["Metadata"]
    assert (metadata["DockerContext"], metadata["Dockerfile"]) == (".", "functions/model/Dockerfile")
    assert metadata["DockerBuildArgs"]["MODEL_DIR"] == "build/model-function"


@pytest.mark.parametrize(("model", "pretrained"), [("ViT-B-32", "openai"), ("tiny-shapes", "openai")])
def test_the_function_expects_the_model_the_embed_function_serves(make_stack: Any, model: str, pretrained: str) -> None:
    stack = make_stack(FallbackMode="function", ClipModel=model, ClipPretrained=pretrained)
    embed = Settings.from_env({**env(stack, "EmbedFunction"), "AWS_REGION": "us-east-1"})
    assert env(stack, "ModelFunction")["EXPECTED_MODEL_ID"] == embed.model_id


def test_a_function_stack_serves_from_the_function_alone(make_stack: Any) -> None:
    stack = make_stack(EndpointKind="function")
    embed, metrics = env(stack, "EmbedFunction"), env(stack, "MetricsFunction")
    assert embed["ENDPOINT_KIND"] == "function" and embed["MODEL_FUNCTION_NAME"] == "<ModelFunction>"
    assert "USE_SAGEMAKER" not in embed and "SAGEMAKER_ENDPOINT_NAME" not in embed and embed["FALLBACK"] == "none"
    assert metrics == {**metrics, "ENDPOINT_KIND": "function", "MODEL_FUNCTION_NAME": "<ModelFunction>"}
    assert "SAGEMAKER_ENDPOINT_NAME" not in metrics
    settings = Settings.from_env({**embed, "AWS_REGION": "us-east-1"})  # the core accepts it
    assert settings.serves_from_function
    assert policy_actions(stack, "MetricsFunctionRole")[-1] == (
        "lambda:GetFunctionConfiguration",
        ["<ModelFunction.Arn>"],
    )


def test_the_function_fallback_keeps_the_endpoint(make_stack: Any) -> None:
    stack = make_stack(FallbackMode="function")
    embed = env(stack, "EmbedFunction")
    assert (embed["USE_SAGEMAKER"], embed["FALLBACK"], embed["MODEL_FUNCTION_NAME"]) == (
        "true",
        "function",
        "<ModelFunction>",
    )
    assert "ENDPOINT_KIND" not in embed and "Endpoint" in created(stack)
    Settings.from_env({**embed, "AWS_REGION": "us-east-1"})


@pytest.mark.parametrize("overrides", [{"EndpointKind": "function"}, {"FallbackMode": "function"}])
def test_the_embed_function_may_invoke_only_the_model_function(make_stack: Any, overrides: dict) -> None:
    stack = make_stack(**overrides)
    lambda_actions = [(a, r) for a, r in policy_actions(stack, "EmbedFunctionRole") if a.startswith("lambda:")]
    assert lambda_actions == [("lambda:InvokeFunction", ["<ModelFunction.Arn>"])]
    endpoint = [r for a, r in policy_actions(stack, "EmbedFunctionRole") if a == "sagemaker:InvokeEndpoint"]
    assert endpoint == (
        []
        if overrides.get("EndpointKind")
        else [["arn:aws:sagemaker:us-east-1:123456789012:endpoint/omnisearch-embed-dev"]]
    )
    model_role = policy_actions(stack, "ModelFunctionRole")
    assert {a for a, _ in model_role} == {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments",
                                          "xray:PutTelemetryRecords"}  # fmt: skip


def test_no_function_stack_may_invoke_a_function(stack: Any) -> None:
    assert not [a for a, _ in policy_actions(stack, "EmbedFunctionRole") if a.startswith("lambda:")]
