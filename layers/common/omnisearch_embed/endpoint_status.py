"""What a SageMaker endpoint is right now: status, instance type and counts, from the control plane.

Shared by the metrics function, the monitor and the deploy script so that all three read the endpoint
the same way. Fields the API leaves out (moto, serverless variants, an endpoint still creating) are
``None``, never a made-up zero. AWS failures become :mod:`omnisearch_embed.errors` with stable codes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from omnisearch_embed.errors import BackendUnavailableError, EmbedError, NotFoundError, ThrottledError

DEFAULT_VARIANT = "AllTraffic"
_THROTTLE_CODES = {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}


@dataclass(frozen=True)
class EndpointStatus:
    """One endpoint's control-plane view (first production variant)."""

    endpoint_name: str
    endpoint_status: str
    endpoint_config_name: str | None = None
    variant_name: str | None = None
    instance_type: str | None = None
    current_instances: int | None = None
    desired_instances: int | None = None
    model_name: str | None = None
    creation_time: str | None = None
    last_modified_time: str | None = None
    failure_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC-offset form, or None: JSON-friendly and sortable."""
    return value.isoformat() if isinstance(value, datetime) else None


def is_not_found(error: ClientError) -> bool:
    """SageMaker answers a missing endpoint with a ValidationException 'Could not find ...'."""
    err = error.response.get("Error", {})
    code = err.get("Code", "")
    message = err.get("Message", "")
    return code in {"ResourceNotFound", "ResourceNotFoundException"} or (
        code == "ValidationException" and "could not find" in message.lower()
    )


def aws_error(error: Exception, action: str) -> EmbedError:
    """Map a boto3 failure to a typed error: throttling 429, anything else 503 (we are up, AWS is not)."""
    if isinstance(error, ClientError):
        err = error.response.get("Error", {})
        code = err.get("Code", "Unknown")
        text = f"{action} failed: {code}: {err.get('Message', '')}".rstrip(": ")
        if code in _THROTTLE_CODES:
            return ThrottledError(text, code="aws_throttled")
        return BackendUnavailableError(text, code="aws_error")
    if isinstance(error, BotoCoreError):
        return BackendUnavailableError(f"{action} failed: {error}", code="aws_unreachable")
    raise TypeError(f"not an AWS error: {error!r}")


def describe_endpoint_status(sagemaker: Any, endpoint_name: str) -> EndpointStatus:
    """describe_endpoint + describe_endpoint_config; a missing endpoint raises NotFoundError(endpoint_not_found)."""
    try:
        endpoint = sagemaker.describe_endpoint(EndpointName=endpoint_name)
    except ClientError as e:
        if is_not_found(e):
            raise NotFoundError(
                f"SageMaker endpoint {endpoint_name!r} does not exist", code="endpoint_not_found"
            ) from e
        raise aws_error(e, "DescribeEndpoint") from e
    except BotoCoreError as e:
        raise aws_error(e, "DescribeEndpoint") from e

    variants = endpoint.get("ProductionVariants") or []
    variant = variants[0] if variants else {}
    config_name = endpoint.get("EndpointConfigName")
    config_variant = _config_variant(sagemaker, config_name, variant.get("VariantName"))
    return EndpointStatus(
        endpoint_name=endpoint.get("EndpointName", endpoint_name),
        endpoint_status=endpoint.get("EndpointStatus", "Unknown"),
        endpoint_config_name=config_name,
        variant_name=variant.get("VariantName") or config_variant.get("VariantName"),
        instance_type=config_variant.get("InstanceType"),
        current_instances=variant.get("CurrentInstanceCount"),
        desired_instances=variant.get("DesiredInstanceCount"),
        model_name=config_variant.get("ModelName"),
        creation_time=iso(endpoint.get("CreationTime")),
        last_modified_time=iso(endpoint.get("LastModifiedTime")),
        failure_reason=endpoint.get("FailureReason"),
    )


def _config_variant(sagemaker: Any, config_name: str | None, variant_name: str | None) -> dict[str, Any]:
    """The config's matching variant; an already deleted config only loses the instance type, not the status."""
    if not config_name:
        return {}
    try:
        config = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
    except ClientError as e:
        if is_not_found(e):
            return {}
        raise aws_error(e, "DescribeEndpointConfig") from e
    except BotoCoreError as e:
        raise aws_error(e, "DescribeEndpointConfig") from e
    variants = config.get("ProductionVariants") or []
    for candidate in variants:
        if variant_name is None or candidate.get("VariantName") == variant_name:
            return candidate
    return variants[0] if variants else {}


def list_endpoints(sagemaker: Any, *, name_contains: str | None = None) -> list[dict[str, Any]]:
    """Every endpoint in the region (all pages), newest first, as JSON-friendly dicts."""
    kwargs: dict[str, Any] = {"SortBy": "CreationTime", "SortOrder": "Descending"}
    if name_contains:
        kwargs["NameContains"] = name_contains
    rows: list[dict[str, Any]] = []
    try:
        for page in sagemaker.get_paginator("list_endpoints").paginate(**kwargs):
            for item in page.get("Endpoints", []):
                rows.append(
                    {
                        "endpoint_name": item["EndpointName"],
                        "endpoint_status": item.get("EndpointStatus"),
                        "creation_time": iso(item.get("CreationTime")),
                        "last_modified_time": iso(item.get("LastModifiedTime")),
                    }
                )
    except (ClientError, BotoCoreError) as e:
        raise aws_error(e, "ListEndpoints") from e
    return rows
