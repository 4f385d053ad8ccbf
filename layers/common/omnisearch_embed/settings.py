"""One settings object, read from the environment once per cold start and validated there.

A wrong value fails the cold start with a :class:`ConfigError` naming the variable, instead of
turning every request into a 500.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from omnisearch_embed.env import ConfigError, env_bool, env_choice, env_csv, env_float, env_int, env_str

TINY_SHAPES_MODEL_ID = "tiny-shapes"
SAGEMAKER_MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # InvokeEndpoint's request limit
LAMBDA_MAX_EVENT_BYTES = 6 * 1024 * 1024  # a synchronous invoke's whole event: body (base64 if binary) + headers
# What serves the model: a SageMaker endpoint (the stack's realtime or serverless kinds) or the model function.
ENDPOINT_KINDS = ("sagemaker", "realtime", "serverless", "function")
KIND_FUNCTION = "function"
FALLBACK_FUNCTION = "function"  # FALLBACK's word for the model function (MODEL_FUNCTION_NAME)
# Held at once per request for S3 images: the bytes, their base64 invoke bodies (4/3) and a decoded check.
S3_BATCH_MEMORY_FACTOR = 4


def model_id_for(model: str, pretrained: str) -> str:
    """``ViT-B-32`` + ``openai`` -> ``ViT-B-32/openai``; a checkpoint path keeps only its file name;
    no weights at all -> ``ViT-B-32/random`` (such vectors must never pass for real ones)."""
    if model == TINY_SHAPES_MODEL_ID:
        return model
    if not pretrained:
        return f"{model}/random"
    tag = os.path.basename(pretrained.rstrip("/")) if "/" in pretrained else pretrained
    return f"{model}/{tag}"


@dataclass(frozen=True)
class Settings:
    """Every tunable of the service. Build with :meth:`from_env`; tests pass a dict."""

    use_sagemaker: bool = False
    sagemaker_endpoint_name: str = ""
    # The endpoint hosts the model as this inference component (it may scale to zero copies): every invoke
    # names it, and /health reads its copy count.
    sagemaker_inference_component_name: str = ""
    aws_region: str = "us-east-1"
    fallback: str = "none"  # none | local | function | <another endpoint name>
    endpoint_kind: str = "sagemaker"  # one of ENDPOINT_KINDS; "function": the model function alone, no SageMaker
    model_function_name: str = ""  # the model function's name or ARN (ENDPOINT_KIND or FALLBACK function)
    clip_model: str = TINY_SHAPES_MODEL_ID
    clip_pretrained: str = ""
    allowed_s3_buckets: tuple[str, ...] = ()
    max_text_chars: int = 10_000
    max_batch_items: int = 256
    # Lambda accepts at most 6 MB per synchronous request, and one image must fit one SageMaker invoke
    # once base64-encoded (4/3 growth): 4 MiB per image and 6 MiB per request keep both true.
    max_image_bytes: int = 4 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_request_bytes: int = 6 * 1024 * 1024
    max_invoke_bytes: int = SAGEMAKER_MAX_PAYLOAD_BYTES
    # S3 images never pass through the Lambda event, so they have their own budget, bounded by memory:
    # they are split across invokes like any batch. 64 MiB x S3_BATCH_MEMORY_FACTOR fits a 1024 MB function.
    max_s3_batch_bytes: int = 64 * 1024 * 1024
    backend_timeout_seconds: float = 20.0
    # Taken off the Lambda's remaining time: our own 504 must be rendered and returned before Lambda kills us.
    deadline_margin_seconds: float = 1.0
    fallback_primary_share: float = 0.5  # of the time left that a failing primary may use before the fallback
    deep_health_cache_seconds: float = 10.0  # keyless GET /health?deep=true probes the model at most this often
    circuit_failure_threshold: int = 3
    circuit_cooldown_seconds: float = 30.0
    cors_allow_origin: str = ""  # e.g. "*" or "https://app.example.com"; empty: no CORS headers
    api_key: str = ""  # local server only: when set, x-api-key or Authorization: Bearer must match

    @property
    def model_id(self) -> str:
        return model_id_for(self.clip_model, self.clip_pretrained)

    @property
    def serves_from_function(self) -> bool:
        """The model function answers alone: no SageMaker endpoint, role or client."""
        return self.endpoint_kind == KIND_FUNCTION

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        use_sagemaker = env_bool(env, "USE_SAGEMAKER", False)
        endpoint = env_str(env, "SAGEMAKER_ENDPOINT_NAME")
        kind = env_choice(env, "ENDPOINT_KIND", "sagemaker", ENDPOINT_KINDS)
        function_name = env_str(env, "MODEL_FUNCTION_NAME")
        if use_sagemaker and not endpoint and kind != KIND_FUNCTION:
            raise ConfigError("USE_SAGEMAKER=true needs SAGEMAKER_ENDPOINT_NAME")
        fallback = env_str(env, "FALLBACK") or "none"
        _check_function(kind, use_sagemaker, endpoint, fallback, function_name)
        cloud = use_sagemaker or kind == KIND_FUNCTION
        default_model = "ViT-B-32" if cloud else TINY_SHAPES_MODEL_ID
        default_pretrained = "openai" if cloud else ""
        settings = cls(
            use_sagemaker=use_sagemaker,
            sagemaker_endpoint_name=endpoint,
            sagemaker_inference_component_name=env_str(env, "SAGEMAKER_INFERENCE_COMPONENT_NAME"),
            aws_region=env_str(env, "AWS_REGION", env_str(env, "AWS_DEFAULT_REGION", "us-east-1")),
            fallback=fallback,
            endpoint_kind=kind,
            model_function_name=function_name,
            clip_model=env_str(env, "CLIP_MODEL") or default_model,
            clip_pretrained=env_str(env, "CLIP_PRETRAINED", default_pretrained),
            allowed_s3_buckets=env_csv(env, "ALLOWED_S3_BUCKETS"),
            max_text_chars=env_int(env, "MAX_TEXT_CHARS", cls.max_text_chars),
            max_batch_items=env_int(env, "MAX_BATCH_ITEMS", cls.max_batch_items),
            max_image_bytes=env_int(env, "MAX_IMAGE_BYTES", cls.max_image_bytes),
            max_image_pixels=env_int(env, "MAX_IMAGE_PIXELS", cls.max_image_pixels),
            max_request_bytes=env_int(env, "MAX_REQUEST_BYTES", cls.max_request_bytes),
            max_invoke_bytes=env_int(env, "MAX_INVOKE_BYTES", cls.max_invoke_bytes, minimum=1024),
            max_s3_batch_bytes=env_int(env, "MAX_S3_BATCH_BYTES", cls.max_s3_batch_bytes),
            backend_timeout_seconds=env_float(env, "BACKEND_TIMEOUT_SECONDS", cls.backend_timeout_seconds),
            deadline_margin_seconds=env_float(env, "DEADLINE_MARGIN_SECONDS", cls.deadline_margin_seconds),
            fallback_primary_share=env_float(env, "FALLBACK_PRIMARY_SHARE", cls.fallback_primary_share),
            deep_health_cache_seconds=env_float(env, "DEEP_HEALTH_CACHE_SECONDS", cls.deep_health_cache_seconds),
            circuit_failure_threshold=env_int(env, "CIRCUIT_FAILURE_THRESHOLD", cls.circuit_failure_threshold),
            circuit_cooldown_seconds=env_float(env, "CIRCUIT_COOLDOWN_SECONDS", cls.circuit_cooldown_seconds),
            cors_allow_origin=env_str(env, "CORS_ALLOW_ORIGIN"),
            api_key=env_str(env, "API_KEY", strip=False),
        )
        if settings.max_invoke_bytes > SAGEMAKER_MAX_PAYLOAD_BYTES:
            raise ConfigError(f"MAX_INVOKE_BYTES={settings.max_invoke_bytes} exceeds SageMaker's 6 MB invoke limit")
        if settings.backend_timeout_seconds >= 29:
            raise ConfigError("BACKEND_TIMEOUT_SECONDS must end well inside API Gateway's 29 s limit")
        if settings.fallback_primary_share > 1:
            raise ConfigError("FALLBACK_PRIMARY_SHARE must be at most 1 (the primary's share of the time left)")
        memory_mb = env_int(env, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", 0, minimum=0)
        if memory_mb and settings.max_s3_batch_bytes * S3_BATCH_MEMORY_FACTOR > memory_mb * 1024 * 1024:
            raise ConfigError(
                f"MAX_S3_BATCH_BYTES={settings.max_s3_batch_bytes} needs about {S3_BATCH_MEMORY_FACTOR}x that in "
                f"memory, more than this function's {memory_mb} MB"
            )
        if fallback not in ("none", "local", FALLBACK_FUNCTION) and fallback == endpoint:
            raise ConfigError("FALLBACK names the primary endpoint itself")
        return settings


def _check_function(kind: str, use_sagemaker: bool, endpoint: str, fallback: str, function_name: str) -> None:
    """The model function's settings agree: it is named when used, and a function stack names no SageMaker."""
    if kind == KIND_FUNCTION:
        if not function_name:
            raise ConfigError("ENDPOINT_KIND=function needs MODEL_FUNCTION_NAME (the model function's name or ARN)")
        if use_sagemaker or endpoint:
            raise ConfigError(
                "ENDPOINT_KIND=function serves from the model function alone: unset USE_SAGEMAKER and "
                "SAGEMAKER_ENDPOINT_NAME"
            )
        if fallback != "none":
            raise ConfigError(f"ENDPOINT_KIND=function has no endpoint to fall back from: FALLBACK={fallback!r}")
    elif fallback == FALLBACK_FUNCTION and not function_name:
        raise ConfigError("FALLBACK=function needs MODEL_FUNCTION_NAME (the model function's name or ARN)")
