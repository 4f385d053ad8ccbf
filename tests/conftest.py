"""Fixtures shared by every test: safe environment defaults, a LambdaContext stand-in, no network.

Sockets may only connect to this machine (127.0.0.1, ::1, localhost): the local-server and moto-server
tests need that, and nothing may reach AWS or the internet. AWS calls go through moto or Stubber.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from pytest_socket import socket_allow_hosts

# Set before any test module imports a Lambda handler (they read the environment at import).
_ENV_DEFAULTS = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
    "POWERTOOLS_SERVICE_NAME": "omnisearch-embed",
    "POWERTOOLS_METRICS_NAMESPACE": "OmniSearchEmbed",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "INFO",
}
for _name, _value in _ENV_DEFAULTS.items():
    os.environ.setdefault(_name, _value)

LOCAL_HOSTS = ["127.0.0.1", "localhost", "::1"]


@pytest.fixture(autouse=True)
def _only_local_network() -> Iterator[None]:
    """Every test: connections to anything but this machine raise SocketConnectBlockedError.

    pytest-socket lifts the restriction after each test, so it is set again for each one.
    """
    socket_allow_hosts(LOCAL_HOSTS, allow_unix_socket=True)
    yield


@dataclass
class LambdaContext:
    """Stands in for the Lambda runtime's context object, as Powertools' own tests do."""

    function_name: str = "omnisearch-embed-EmbedFunction"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:omnisearch-embed-EmbedFunction"
    aws_request_id: str = "da658bd3-2d6f-4e7b-8ec2-937234644fdc"
    log_group_name: str = "/aws/lambda/omnisearch-embed-EmbedFunction"
    log_stream_name: str = "2026/01/01/[$LATEST]0123456789abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext()
