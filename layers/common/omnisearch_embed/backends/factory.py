"""Build the backend the settings describe, once per cold start, so a wrong combination fails there."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omnisearch_embed.backends.base import Backend
from omnisearch_embed.backends.fallback import FallbackBackend
from omnisearch_embed.backends.lambda_model import LambdaModelBackend
from omnisearch_embed.backends.lambda_model import make_client as make_lambda_client
from omnisearch_embed.backends.sagemaker import SageMakerBackend, make_client, make_control_client
from omnisearch_embed.component_copies import ComponentCopies
from omnisearch_embed.errors import ConfigError
from omnisearch_embed.settings import FALLBACK_FUNCTION, Settings


def backend_from_settings(
    settings: Settings,
    *,
    local_factory: Callable[[], Backend] | None = None,
    sagemaker_client: Any = None,
    lambda_client: Any = None,
    sagemaker_control_client: Any = None,
) -> Backend:
    """What the settings describe: the model function alone (ENDPOINT_KIND=function), else SageMaker
    (USE_SAGEMAKER=true) wrapped in a FallbackBackend when FALLBACK names one, else the local model.

    ``local_factory`` is a zero-argument callable returning the local backend; only the local server has
    one (the Lambda layer carries no torch). ``sagemaker_client``, ``lambda_client`` and
    ``sagemaker_control_client`` (``sagemaker``: an inference component's copy count) are injected by tests.
    """
    if settings.serves_from_function:
        return _function(settings, lambda_client)
    if not settings.use_sagemaker:
        if local_factory is None:
            raise ConfigError(
                "USE_SAGEMAKER=false needs the local model, which only the local server provides; "
                "in Lambda set USE_SAGEMAKER=true and SAGEMAKER_ENDPOINT_NAME"
            )
        return local_factory()

    client = (
        sagemaker_client
        if sagemaker_client is not None
        else make_client(settings.aws_region, settings.backend_timeout_seconds)
    )
    primary = _sagemaker(
        settings,
        settings.sagemaker_endpoint_name,
        client,
        inference_component=settings.sagemaker_inference_component_name,
        control_client=sagemaker_control_client,
    )
    fallback = settings.fallback.strip()
    if fallback.lower() in ("", "none"):
        return primary
    if fallback.lower() == FALLBACK_FUNCTION:
        secondary: Backend = _function(settings, lambda_client)
    elif fallback.lower() == "local":
        if local_factory is None:
            raise ConfigError(
                "FALLBACK=local needs the local model, which only the local server provides; "
                "in Lambda use FALLBACK=function (the model function), none, or another endpoint serving the same model"
            )
        secondary = local_factory()
    else:
        secondary = _sagemaker(settings, fallback, client)
    return FallbackBackend(
        primary,
        secondary,
        failure_threshold=settings.circuit_failure_threshold,
        cooldown_seconds=settings.circuit_cooldown_seconds,
        primary_share=settings.fallback_primary_share,
    )


def _function(settings: Settings, client: Any) -> LambdaModelBackend:
    if client is None:
        client = make_lambda_client(settings.aws_region, settings.backend_timeout_seconds)
    return LambdaModelBackend(
        settings.model_function_name,
        settings.model_id,
        client=client,
        timeout_seconds=settings.backend_timeout_seconds,
        max_invoke_bytes=settings.max_invoke_bytes,
    )


def _sagemaker(
    settings: Settings,
    endpoint_name: str,
    client: Any,
    *,
    inference_component: str = "",
    control_client: Any = None,
) -> SageMakerBackend:
    copies = None
    if inference_component:
        region = settings.aws_region
        client_factory = (lambda: control_client) if control_client is not None else lambda: make_control_client(region)
        copies = ComponentCopies(client_factory, inference_component)
    return SageMakerBackend(
        endpoint_name,
        settings.model_id,
        inference_component=inference_component,
        copies=copies,
        client=client,
        region=settings.aws_region,
        timeout_seconds=settings.backend_timeout_seconds,
        max_invoke_bytes=settings.max_invoke_bytes,
    )
