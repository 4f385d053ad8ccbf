"""The serverless model's image: our slim CPU image by default, the stock CPU DLC on request; the role pulls only it.

The deploy command (omnisearch_ops.image.images_for) must build exactly the images of ours a stack runs:
each combination of the choosing parameters is compared with the models the template creates.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest

from endpoint_server.cli import parse_args
from omnisearch_ops import image

REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
SLIM = f"{REGISTRY}/omnisearch-embed-endpoint-cpu:3f2c1e9"
CPU_DLC = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.6.0-cpu-py312-ubuntu22.04-sagemaker"
SERVERLESS = [{"EndpointKind": "serverless"}, {"FallbackMode": "serverless"}]
KINDS = [{}, *SERVERLESS]  # realtime alone, serverless endpoint, serverless fallback


def models(stack: Any) -> dict[str, dict[str, Any]]:
    """The SageMaker models this parameter set creates: logical id -> PrimaryContainer."""
    out = {}
    for name, resource in stack.of_type("AWS::SageMaker::Model").items():
        if "Condition" not in resource or stack.condition(resource["Condition"]):
            out[name] = stack.props(name)["PrimaryContainer"]
    return out


def repository_arn(uri: str) -> str:
    account, _, _, region, *_ = uri.split(".", 4)
    repository = re.split(r"[:@]", uri.split("/", 1)[1])[0]
    return f"arn:aws:ecr:{region}:{account}:repository/{repository}"


def pulled(stack: Any) -> list[str]:
    """Every repository the SageMaker role may pull from."""
    policy = next(
        p for p in stack.props("SageMakerExecutionRole")["Policies"] if p["PolicyName"] == "pull-inference-image"
    )
    statements = [s for s in policy["PolicyDocument"]["Statement"] if "ecr:BatchGetImage" in s["Action"]]
    return [arn for s in statements for arn in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])]


@pytest.mark.parametrize("kind", SERVERLESS, ids=lambda k: next(iter(k)))
def test_the_serverless_model_runs_the_slim_image_by_default(make_stack: Any, kind: dict[str, str]) -> None:
    stack = make_stack(EndpointServerImageTag="3f2c1e9", ServerlessMaxConcurrency="8", **kind)
    container = stack.props("ServerlessModel")["PrimaryContainer"]
    assert container["Image"] == SLIM
    assert container["ModelDataUrl"] == stack.props("Model")["PrimaryContainer"]["ModelDataUrl"]
    env = container["Environment"]
    assert env["CLIP_ENGINE"] == "onnxruntime"  # no torch in the image: an archive without ONNX fails at start
    args = parse_args(["serve"], {k: str(v) for k, v in env.items()})  # what our server makes of them
    assert (args.workers, args.max_batch_size, args.max_wait_ms) == (1, 16, 2.0)
    assert args.max_queue == 8  # every invocation SageMaker may send at once: none is refused


@pytest.mark.parametrize("kind", SERVERLESS, ids=lambda k: next(iter(k)))
def test_the_stock_cpu_dlc_stays_a_choice(make_stack: Any, kind: dict[str, str]) -> None:
    container = make_stack(ServerlessContainer="toolkit", **kind).props("ServerlessModel")["PrimaryContainer"]
    assert container["Image"] == CPU_DLC
    assert container["Environment"]["CLIP_ENGINE"] == "auto"  # torch serves an archive without ONNX files
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"


@pytest.mark.parametrize(
    ("overrides", "repositories"),
    [
        ({}, ["omnisearch-embed-endpoint"]),
        ({"EndpointKind": "serverless"}, ["omnisearch-embed-endpoint", "omnisearch-embed-endpoint-cpu"]),
        ({"FallbackMode": "serverless", "ServerlessContainer": "toolkit"}, ["omnisearch-embed-endpoint", None]),
        ({"EndpointKind": "serverless", "ServingContainer": "toolkit"}, [None, "omnisearch-embed-endpoint-cpu"]),
    ],
)
def test_the_role_pulls_exactly_the_images_in_use(
    make_stack: Any, overrides: dict[str, str], repositories: list[str | None]
) -> None:
    """None: the DLC's repository (InferenceImage for the model, ServerlessImage for the serverless model)."""
    stack = make_stack(**overrides)
    dlc = {"Model": stack.params["InferenceImage"], "ServerlessModel": stack.params["ServerlessImage"]}
    expected = [
        f"arn:aws:ecr:us-east-1:123456789012:repository/{repo}" if repo else repository_arn(dlc[model])
        for model, repo in zip(("Model", "ServerlessModel"), repositories, strict=False)
    ]
    assert pulled(stack) == expected
    assert sorted(pulled(stack)) == sorted(repository_arn(c["Image"]) for c in models(stack).values())


CHOICES = {
    "ServingContainer": ["endpoint-server", "toolkit"],
    "ServerlessContainer": ["endpoint-server-cpu", "toolkit"],
}


@pytest.mark.parametrize(
    "overrides",
    [
        {**dict(zip(CHOICES, values, strict=True)), **kind}
        for values, kind in itertools.product(itertools.product(*CHOICES.values()), KINDS)
    ],
    ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()),
)
def test_the_deploy_command_builds_the_images_of_ours_the_stack_runs(
    make_stack: Any, overrides: dict[str, str]
) -> None:
    stack = make_stack(EndpointServerImageTag="3f2c1e9", **overrides)
    ours = {
        c["Image"].split("/", 1)[1].split(":")[0] for c in models(stack).values() if c["Image"].startswith(REGISTRY)
    }
    assert {built.repository for built in image.images_for(overrides)} == ours
    assert all(c["Image"].endswith(":3f2c1e9") for c in models(stack).values() if c["Image"].startswith(REGISTRY))


def test_the_deploy_command_knows_the_templates_defaults(template: dict) -> None:
    for name, value in image.TEMPLATE_DEFAULTS.items():
        assert template["Parameters"][name]["Default"] == value, name
    assert template["Parameters"]["ServerlessContainer"]["AllowedValues"] == ["endpoint-server-cpu", "toolkit"]


def test_serverless_limits_are_the_parameters_bounds(template: dict) -> None:
    """Serverless Inference: 1024-6144 MB in 1 GB steps, 1-200 concurrent invocations."""
    params = template["Parameters"]
    assert params["ServerlessMemoryMB"]["AllowedValues"] == list(range(1024, 6145, 1024))
    assert (params["ServerlessMaxConcurrency"]["MinValue"], params["ServerlessMaxConcurrency"]["MaxValue"]) == (1, 200)


def test_the_endpoint_output_says_what_idle_costs(template: dict) -> None:
    assert "$0 while idle" in template["Outputs"]["EndpointName"]["Description"]
