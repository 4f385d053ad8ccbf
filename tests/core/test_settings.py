"""Settings.from_env: defaults, every variable it reads, and the checks that span variables."""

from __future__ import annotations

import dataclasses

import pytest

from omnisearch_embed.env import ConfigError
from omnisearch_embed.settings import SAGEMAKER_MAX_PAYLOAD_BYTES, TINY_SHAPES_MODEL_ID, Settings, model_id_for

CLOUD = {"USE_SAGEMAKER": "true", "SAGEMAKER_ENDPOINT_NAME": "ep"}


def test_an_empty_environment_is_the_local_demo() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.use_sagemaker is False and settings.model_id == TINY_SHAPES_MODEL_ID


def test_sagemaker_defaults_to_the_openai_vit() -> None:
    settings = Settings.from_env(CLOUD)
    assert settings.use_sagemaker and settings.sagemaker_endpoint_name == "ep"
    assert settings.model_id == "ViT-B-32/openai"
    assert Settings.from_env({**CLOUD, "CLIP_PRETRAINED": ""}).model_id == "ViT-B-32/random"


def test_every_variable_reaches_its_field() -> None:
    env = {
        **CLOUD,
        "AWS_REGION": "eu-west-1",
        "FALLBACK": "standby",
        "ENDPOINT_KIND": "Realtime",
        "MODEL_FUNCTION_NAME": "omnisearch-embed-dev-model",
        "SAGEMAKER_INFERENCE_COMPONENT_NAME": "omnisearch-embed-dev-clip",
        "CLIP_MODEL": "RN50",
        "CLIP_PRETRAINED": "/opt/ckpt/model.pt",
        "ALLOWED_S3_BUCKETS": "a, b",
        "MAX_TEXT_CHARS": "100",
        "MAX_BATCH_ITEMS": "8",
        "MAX_IMAGE_BYTES": "1000",
        "MAX_IMAGE_PIXELS": "2000",
        "MAX_REQUEST_BYTES": "3000",
        "MAX_INVOKE_BYTES": "4096",
        "MAX_S3_BATCH_BYTES": "5000",
        "BACKEND_TIMEOUT_SECONDS": "8",
        "DEADLINE_MARGIN_SECONDS": "0.5",
        "FALLBACK_PRIMARY_SHARE": "0.75",
        "DEEP_HEALTH_CACHE_SECONDS": "3",
        "CIRCUIT_FAILURE_THRESHOLD": "5",
        "CIRCUIT_COOLDOWN_SECONDS": "12",
        "CORS_ALLOW_ORIGIN": " * ",
        "API_KEY": "k",
    }
    assert dataclasses.asdict(Settings.from_env(env)) == {
        "use_sagemaker": True,
        "sagemaker_endpoint_name": "ep",
        "sagemaker_inference_component_name": "omnisearch-embed-dev-clip",
        "aws_region": "eu-west-1",
        "fallback": "standby",
        "endpoint_kind": "realtime",
        "model_function_name": "omnisearch-embed-dev-model",
        "clip_model": "RN50",
        "clip_pretrained": "/opt/ckpt/model.pt",
        "allowed_s3_buckets": ("a", "b"),
        "max_text_chars": 100,
        "max_batch_items": 8,
        "max_image_bytes": 1000,
        "max_image_pixels": 2000,
        "max_request_bytes": 3000,
        "max_invoke_bytes": 4096,
        "max_s3_batch_bytes": 5000,
        "backend_timeout_seconds": 8.0,
        "deadline_margin_seconds": 0.5,
        "fallback_primary_share": 0.75,
        "deep_health_cache_seconds": 3.0,
        "circuit_failure_threshold": 5,
        "circuit_cooldown_seconds": 12.0,
        "cors_allow_origin": "*",
        "api_key": "k",
    }
    assert Settings.from_env(env).model_id == "RN50/model.pt"


def test_the_region_falls_back_to_aws_default_region() -> None:
    assert Settings.from_env({"AWS_DEFAULT_REGION": "ap-south-1"}).aws_region == "ap-south-1"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"USE_SAGEMAKER": "sometimes"}, "USE_SAGEMAKER"),
        ({"USE_SAGEMAKER": "true"}, "SAGEMAKER_ENDPOINT_NAME"),
        ({"MAX_BATCH_ITEMS": "many"}, "MAX_BATCH_ITEMS"),
        ({"MAX_TEXT_CHARS": "0"}, "MAX_TEXT_CHARS"),
        ({"MAX_INVOKE_BYTES": "512"}, "MAX_INVOKE_BYTES"),
        ({"MAX_INVOKE_BYTES": str(SAGEMAKER_MAX_PAYLOAD_BYTES + 1)}, "MAX_INVOKE_BYTES"),
        ({"BACKEND_TIMEOUT_SECONDS": "29"}, "BACKEND_TIMEOUT_SECONDS"),
        ({"BACKEND_TIMEOUT_SECONDS": "nan"}, "BACKEND_TIMEOUT_SECONDS"),
        ({"DEADLINE_MARGIN_SECONDS": "-1"}, "DEADLINE_MARGIN_SECONDS"),
        ({"FALLBACK_PRIMARY_SHARE": "1.5"}, "FALLBACK_PRIMARY_SHARE"),
        ({"CIRCUIT_COOLDOWN_SECONDS": "soon"}, "CIRCUIT_COOLDOWN_SECONDS"),
        ({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "lots"}, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),
        ({**CLOUD, "FALLBACK": "ep"}, "FALLBACK"),
    ],
)
def test_a_bad_setting_is_a_config_error_naming_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("model", "pretrained", "model_id"),
    [("ViT-B-32", "openai", "ViT-B-32/openai"), ("ViT-B-32", "", "ViT-B-32/random"),
     ("ViT-B-32", "/ckpt/dir/", "ViT-B-32/dir"), (TINY_SHAPES_MODEL_ID, "whatever", TINY_SHAPES_MODEL_ID)],
)  # fmt: skip
def test_model_id_for(model: str, pretrained: str, model_id: str) -> None:
    assert model_id_for(model, pretrained) == model_id
