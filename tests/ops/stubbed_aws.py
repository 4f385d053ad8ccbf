"""Real boto3 clients under botocore's Stubber, handed out as ``AwsTarget.session()`` hands out its own.

moto implements neither inference components nor their autoscaling dimension, so the commands that read or
set a component run against Stubber: each expected call's exact parameters and its answer, in order.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from omnisearch_ops.aws import AwsTarget

REGION = "us-east-1"
ACCOUNT = "123456789012"
WHEN = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


class StubbedSession:
    """One real client per service, each under its own Stubber; ``client(name)`` returns the same one each time."""

    def __init__(self, *services: str) -> None:
        self.clients = {name: boto3.client(name, region_name=REGION) for name in services}
        self.stubs = {name: Stubber(client) for name, client in self.clients.items()}

    def client(self, name: str) -> Any:
        return self.clients[name]

    def expect(self, service: str, operation: str, response: dict[str, Any], params: Any = None) -> None:
        """The next ``operation`` on ``service`` answers ``response``; ``params`` None accepts any parameters."""
        self.stubs[service].add_response(operation, response, params)

    def refuse(self, service: str, operation: str, code: str, message: str, params: Any = None) -> None:
        self.stubs[service].add_client_error(
            operation, service_error_code=code, service_message=message, http_status_code=400, expected_params=params
        )

    def assert_done(self) -> None:
        for stub in self.stubs.values():
            stub.assert_no_pending_responses()


@contextmanager
def stubbed(monkeypatch: pytest.MonkeyPatch, *services: str) -> Iterator[StubbedSession]:
    """Every ``AwsTarget.session()`` in the block is this stubbed session; every expected call must be made."""
    session = StubbedSession(*services)
    monkeypatch.setattr(AwsTarget, "session", lambda self: session)
    for stub in session.stubs.values():
        stub.activate()
    try:
        yield session
    finally:
        for stub in session.stubs.values():
            stub.deactivate()


def endpoint_description(name: str, *, components: bool, instances: int = 1) -> dict[str, Any]:
    """DescribeEndpoint: an inference-component endpoint reports its managed instance scaling."""
    variant: dict[str, Any] = {"VariantName": "AllTraffic", "CurrentInstanceCount": instances}
    if components:
        variant["ManagedInstanceScaling"] = {"Status": "ENABLED", "MinInstanceCount": 0, "MaxInstanceCount": 2}
    else:
        variant["DesiredInstanceCount"] = instances
    return {
        "EndpointName": name,
        "EndpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{name}",
        "EndpointConfigName": f"{name}-config",
        "ProductionVariants": [variant],
        "EndpointStatus": "InService",
        "CreationTime": WHEN,
        "LastModifiedTime": WHEN,
    }


def endpoint_config(name: str, *, components: bool) -> dict[str, Any]:
    """DescribeEndpointConfig: a components endpoint's variant names no model (its component does)."""
    variant: dict[str, Any] = {"VariantName": "AllTraffic", "InstanceType": "ml.g4dn.xlarge"}
    if not components:
        variant.update(ModelName=f"{name}-model", InitialInstanceCount=1)
    return {
        "EndpointConfigName": f"{name}-config",
        "EndpointConfigArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint-config/{name}-config",
        "ProductionVariants": [variant],
        "CreationTime": WHEN,
    }


def component_description(component: str, endpoint: str, *, desired: int, current: int) -> dict[str, Any]:
    return {
        "InferenceComponentName": component,
        "InferenceComponentArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:inference-component/{component}",
        "EndpointName": endpoint,
        "EndpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{endpoint}",
        "RuntimeConfig": {"DesiredCopyCount": desired, "CurrentCopyCount": current},
        "CreationTime": WHEN,
        "LastModifiedTime": WHEN,
        "InferenceComponentStatus": "InService",
    }


def expect_report(session: StubbedSession, endpoint: str, *, components: bool) -> None:
    """The calls endpoint_report makes: the endpoint, its config, then CloudWatch (no figures in the window)."""
    name = {"EndpointName": endpoint}
    session.expect("sagemaker", "describe_endpoint", endpoint_description(endpoint, components=components), name)
    config = {"EndpointConfigName": f"{endpoint}-config"}
    session.expect("sagemaker", "describe_endpoint_config", endpoint_config(endpoint, components=components), config)
    session.expect("cloudwatch", "list_metrics", {"Metrics": []})
    session.expect("cloudwatch", "get_metric_data", {"MetricDataResults": []})
