"""Wait for a serving container's ``/ping`` to turn healthy, as SageMaker's health check does."""

from __future__ import annotations

import time

import httpx


def wait_healthy(client: httpx.Client, path: str = "/ping", timeout: float = 120.0) -> httpx.Response:
    """Poll ``GET path`` until it answers 200 (503 means still loading); fail on anything else or at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(path)
        if response.status_code == 200:
            return response
        assert response.status_code == 503, response.text
        assert time.monotonic() < deadline, f"{path} still answers {response.text} after {timeout:g} s"
        time.sleep(0.05)
