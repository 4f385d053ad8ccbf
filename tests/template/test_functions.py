"""Lambda functions and layer: runtime, sizing, environment, code locations."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from omnisearch_embed.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = {
    "EmbedFunction": "functions/embed",
    "MetricsFunction": "functions/metrics",
    "AuthorizerFunction": "functions/authorizer",
}
POWERTOOLS_ENV = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}
API_GATEWAY_INTEGRATION_LIMIT_S = 29


class RecordingEnv(dict):
    """An environment that records which variable names Settings.from_env reads."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return super().__contains__(key)

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("Settings.from_env should read names, not iterate the environment")


def settings_env_names() -> set[str]:
    env = RecordingEnv({"USE_SAGEMAKER": "true", "SAGEMAKER_ENDPOINT_NAME": "x"})
    Settings.from_env(env)
    return env.read


def environment(stack: Any, function: str) -> dict[str, str]:
    return stack.props(function)["Environment"]["Variables"]


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_runtime_architecture_alias_tracing(stack: Any, function: str) -> None:
    props = stack.props(function)
    assert props["Runtime"] == "python3.13"
    assert props["Architectures"] == ["arm64"]  # FunctionArchitecture's default: Graviton in AWS
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert props["Handler"] == "app.lambda_handler"
    assert props["Layers"] == [f"<{stack.prefixed('CommonLayer', 'AWS::Lambda::LayerVersion')}>"]
    alias = stack.props(f"{function}Aliaslive")
    assert alias["Name"] == "live"
    assert alias["FunctionVersion"] == f"<{stack.prefixed(function + 'Version', 'AWS::Lambda::Version')}.Version>"


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_code_location_exists_with_a_lambda_handler(template: dict, function: str) -> None:
    code_uri = template["Resources"][function]["Properties"]["CodeUri"]
    assert code_uri == FUNCTIONS[function]
    app = ROOT / code_uri / "app.py"
    assert app.is_file(), f"{app} missing"
    names = {node.name for node in ast.parse(app.read_text()).body if isinstance(node, ast.FunctionDef)}
    assert "lambda_handler" in names


def test_layer_is_built_for_the_function_runtime(template: dict) -> None:
    layer = template["Resources"]["CommonLayer"]
    assert layer["Properties"]["ContentUri"] == "layers/common"
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Properties"]["CompatibleArchitectures"] == [{"Ref": "FunctionArchitecture"}]
    assert layer["Metadata"] == {"BuildMethod": "python3.13", "BuildArchitecture": {"Ref": "FunctionArchitecture"}}
    assert (ROOT / "layers/common/omnisearch_embed/__init__.py").is_file()


def test_embed_timeout_outlasts_the_backend_and_stays_inside_api_gateway(stack: Any) -> None:
    props = stack.props("EmbedFunction")
    backend = float(environment(stack, "EmbedFunction")["BACKEND_TIMEOUT_SECONDS"])
    assert backend < props["Timeout"] < API_GATEWAY_INTEGRATION_LIMIT_S
    assert props["MemorySize"] >= 1024  # Pillow decodes images up to MAX_IMAGE_PIXELS


def test_metrics_and_authorizer_sizes(stack: Any) -> None:
    assert stack.props("AuthorizerFunction")["MemorySize"] == 128
    assert stack.props("AuthorizerFunction")["Timeout"] <= 10
    assert stack.props("MetricsFunction")["Timeout"] < API_GATEWAY_INTEGRATION_LIMIT_S


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_environment_names_are_the_cores_settings_or_powertools(stack: Any, function: str) -> None:
    names = set(environment(stack, function))
    assert names >= POWERTOOLS_ENV
    assert names - POWERTOOLS_ENV <= settings_env_names()


def test_powertools_environment(stack: Any) -> None:
    env = environment(stack, "EmbedFunction")
    assert env["POWERTOOLS_SERVICE_NAME"] == "omnisearch-embed"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "OmniSearchEmbed"
    assert env["POWERTOOLS_LOG_LEVEL"] in {"DEBUG", "INFO", "WARNING", "ERROR"}


@pytest.mark.parametrize(
    "overrides",
    [{}, {"FallbackMode": "omnisearch-embed-prod-b", "AllowedS3Buckets": "photos,media", "Stage": "prod"}],
)
def test_the_core_accepts_the_embed_environment(make_stack: Any, overrides: dict[str, str]) -> None:
    stack = make_stack(**overrides)
    env = {**environment(stack, "EmbedFunction"), "AWS_REGION": "us-east-1"}
    settings = Settings.from_env(env)
    assert settings.use_sagemaker is True
    assert settings.sagemaker_endpoint_name == stack.props("Endpoint")["EndpointName"]
    assert settings.model_id == "ViT-B-32/openai"
    assert settings.fallback == overrides.get("FallbackMode", "none")
    assert settings.allowed_s3_buckets == tuple(filter(None, overrides.get("AllowedS3Buckets", "").split(",")))


def test_the_core_accepts_the_metrics_environment(stack: Any) -> None:
    settings = Settings.from_env({**environment(stack, "MetricsFunction"), "AWS_REGION": "us-east-1"})
    assert settings.sagemaker_endpoint_name == "omnisearch-embed-dev"


def test_the_model_container_and_the_functions_agree_on_the_model(make_stack: Any) -> None:
    stack = make_stack(ClipModel="ViT-L-14", ClipPretrained="laion2b_s32b_b82k")
    container = stack.props("Model")["PrimaryContainer"]["Environment"]
    env = environment(stack, "EmbedFunction")
    assert (env["CLIP_MODEL"], env["CLIP_PRETRAINED"]) == (container["CLIP_MODEL"], container["CLIP_PRETRAINED"])
    assert Settings.from_env({**env, "AWS_REGION": "us-east-1"}).model_id == "ViT-L-14/laion2b_s32b_b82k"


def test_each_function_has_a_log_group_with_retention(stack: Any) -> None:
    groups = {stack.resolve(r["Properties"]["LogGroupName"]) for r in stack.of_type("AWS::Logs::LogGroup").values()}
    for function in FUNCTIONS:
        name = stack.props(function)["FunctionName"]
        assert f"/aws/lambda/{name}" in groups
    for group in stack.of_type("AWS::Logs::LogGroup").values():
        assert group["Properties"]["RetentionInDays"] > 0


@pytest.mark.parametrize("architecture", ["arm64", "x86_64"])
def test_function_architecture_sets_every_function_and_the_layer(make_stack: Any, architecture: str) -> None:
    stack = make_stack(FunctionArchitecture=architecture)
    for name in FUNCTIONS:
        assert stack.props(name)["Architectures"] == [architecture], name
    layer = stack.props(stack.prefixed("CommonLayer", "AWS::Lambda::LayerVersion"))
    assert layer["CompatibleArchitectures"] == [architecture]
