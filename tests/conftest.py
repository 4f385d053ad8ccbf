"""Fixtures shared by every test: safe environment defaults (set when pytest starts) and no network.

Sockets may only connect to this machine (127.0.0.1, ::1, localhost): the local-server and moto-server
tests need that, and nothing may reach AWS or the internet. AWS calls go through moto or Stubber.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from pytest_socket import socket_allow_hosts

# Set before any test module imports a Lambda handler (they read the environment at import).
ENV_DEFAULTS = {
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
_ADDED_ENV = pytest.StashKey[list[str]]()

LOCAL_HOSTS = ["127.0.0.1", "localhost", "::1"]


@pytest.fixture(autouse=True)
def _only_local_network() -> Iterator[None]:
    """Every test: connections to anything but this machine raise SocketConnectBlockedError.

    pytest-socket lifts the restriction after each test, so it is set again for each one.
    """
    socket_allow_hosts(LOCAL_HOSTS, allow_unix_socket=True)
    yield


def pytest_configure(config: pytest.Config) -> None:
    """Fill in the defaults the caller's environment lacks, before collection imports any handler.

    A hook, not module code: importing this file changes nothing, and the session gives back what it added.
    """
    added = [name for name in ENV_DEFAULTS if name not in os.environ]
    os.environ.update({name: ENV_DEFAULTS[name] for name in added})
    config.stash[_ADDED_ENV] = added


def pytest_unconfigure(config: pytest.Config) -> None:
    for name in config.stash.get(_ADDED_ENV, []):
        os.environ.pop(name, None)
