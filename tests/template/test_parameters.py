"""Parameters, outputs and samconfig.toml: names other parts rely on, and values the template accepts."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PARAMETERS = {
    "Stage",
    "InstanceType",
    "MinInstances",
    "MaxInstances",
    "TargetInvocationsPerInstance",
    "TargetConcurrentRequestsPerCopy",
    "WakeOnRequest",
    "ModelDataUrl",
    "ClipModel",
    "ClipPretrained",
    "InferenceImage",
    "ServingContainer",
    "EndpointServerImageTag",
    "AllowedS3Buckets",
    "S3KmsKeyArn",
    "FallbackMode",
    "ThrottleRateLimit",
    "ThrottleBurstLimit",
    "QuotaLimit",
    "CorsAllowOrigin",
    "FunctionArchitecture",
    "EndpointKind",
    "ServerlessMemoryMB",
    "ServerlessMaxConcurrency",
    "ServerlessImage",
    "ServerlessContainer",
}
OUTPUTS = {"ApiUrl", "ApiKeyId", "EndpointName", "InferenceComponentName", "ModelFunctionName", "DashboardUrl"}


def samconfig() -> dict[str, Any]:
    return tomllib.loads((ROOT / "samconfig.toml").read_text())


def accepts(spec: dict[str, Any], value: str) -> bool:
    """What CloudFormation checks before it creates anything."""
    if "AllowedValues" in spec and value not in {str(v) for v in spec["AllowedValues"]}:
        return False
    if spec["Type"] == "Number":
        number = float(value)
        return spec.get("MinValue", number) <= number <= spec.get("MaxValue", number)
    return re.fullmatch(spec.get("AllowedPattern", ".*"), value) is not None


def test_parameter_and_output_names(template: dict) -> None:
    assert set(template["Parameters"]) == PARAMETERS
    assert set(template["Outputs"]) == OUTPUTS


def test_defaults(template: dict) -> None:
    defaults = {name: spec.get("Default") for name, spec in template["Parameters"].items()}
    assert defaults["InstanceType"] == "ml.g4dn.xlarge"
    # MinInstances left out: the kind's own floor (tests/template/test_components_endpoint.py resolves it).
    assert (defaults["MinInstances"], defaults["MaxInstances"]) == ("", 4)
    assert (defaults["ClipModel"], defaults["ClipPretrained"]) == ("ViT-B-32", "openai")
    assert defaults["FallbackMode"] == "none"
    assert defaults["ModelDataUrl"] is None  # no sensible default: the operator's own bucket
    for name, spec in template["Parameters"].items():
        if "Default" in spec:
            assert accepts(spec, str(spec["Default"])), name


@pytest.mark.parametrize(
    ("name", "value", "ok"),
    [
        ("FallbackMode", "local", False),  # in-process CLIP: the Lambda package has no torch
        ("FallbackMode", "serverless", True),
        ("EndpointKind", "gpu", False),
        ("ServerlessMemoryMB", "1500", False),  # SageMaker offers 1 GB steps only
        ("ServerlessMemoryMB", "4096", True),
        ("ServerlessMaxConcurrency", "201", False),
        ("FallbackMode", "omnisearch-embed-prod-b", True),
        ("FallbackMode", "none", True),
        ("FallbackMode", "Other-Endpoint", False),  # SageMaker ARNs are lower case
        ("AllowedS3Buckets", "a-bucket, b-bucket", False),
        ("AllowedS3Buckets", "a-bucket,b-bucket", True),
        ("ModelDataUrl", "s3://bucket/model.tar.gz", True),
        ("ModelDataUrl", "https://bucket.s3.amazonaws.com/model.tar.gz", False),
        ("Stage", "Prod", False),
        ("CorsAllowOrigin", "https://app.example.com", True),
        ("CorsAllowOrigin", "'*'", False),
        ("InferenceImage", "pytorch/pytorch:latest", False),
        ("ServingContainer", "torchserve", False),
        ("EndpointServerImageTag", "3f2c1e9", True),
        ("EndpointServerImageTag", "repo:tag", False),
        ("ServerlessContainer", "toolkit", True),
        ("ServerlessContainer", "endpoint-server", False),  # the GPU image has no place on Serverless Inference
    ],
)
def test_parameter_validation(template: dict, name: str, value: str, ok: bool) -> None:
    assert accepts(template["Parameters"][name], value) is ok


def test_outputs(stack: Any) -> None:
    outputs = stack.resolve(stack.template["Outputs"])
    assert outputs["ApiUrl"]["Value"] == "https://<EmbedApi>.execute-api.us-east-1.amazonaws.com/dev"
    assert outputs["ApiKeyId"]["Value"] == "<EmbedApiApiKey>"
    assert stack.resources["EmbedApiApiKey"]["Type"] == "AWS::ApiGateway::ApiKey"
    assert outputs["EndpointName"]["Value"] == "<Endpoint.EndpointName>"
    assert outputs["DashboardUrl"]["Value"].endswith("#dashboards:name=omnisearch-embed-dev")
    assert stack.props("Dashboard")["DashboardName"] == "omnisearch-embed-dev"


def test_samconfig_environments(template: dict) -> None:
    config = samconfig()
    assert config["version"] == 0.1
    assert {"default", "dev", "prod"} <= set(config)
    stacks = set()
    for env in ("default", "dev", "prod"):
        deploy = config[env]["deploy"]["parameters"]
        stacks.add(deploy["stack_name"])
        assert deploy["region"]
        assert "CAPABILITY_IAM" in deploy["capabilities"].split()
        overrides = dict(item.split("=", 1) for item in shlex.split(deploy["parameter_overrides"]))
        assert set(overrides) <= PARAMETERS, env
        for name, spec in template["Parameters"].items():
            if "Default" not in spec:
                assert name in overrides, f"{env} must set {name}"
            if name in overrides:
                assert accepts(spec, overrides[name]), (env, name, overrides[name])
        assert config[env]["build"]["parameters"]["cached"] is True
    assert len(stacks) == 3, "each environment deploys its own stack"


def test_dev_is_smaller_than_prod() -> None:
    config = samconfig()

    def overrides(env: str) -> dict[str, str]:
        raw = config[env]["deploy"]["parameters"]["parameter_overrides"]
        return dict(item.split("=", 1) for item in shlex.split(raw))

    dev, prod = overrides("dev"), overrides("prod")
    assert dev["Stage"] == "dev" and prod["Stage"] == "prod"
    assert int(dev["MaxInstances"]) < int(prod["MaxInstances"])
    assert prod["CorsAllowOrigin"] != "*"
