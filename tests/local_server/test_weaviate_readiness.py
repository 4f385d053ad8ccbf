"""/.well-known/ready is true only once the backend can embed, answers inside Weaviate's 500 ms either way,
and the routes are served only where they should be (no API key can guard them)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest

from local_server.cli import banner, parse_args
from local_server.weaviate import choose
from omnisearch_embed.backends.sagemaker import SageMakerBackend, client_config
from omnisearch_embed.errors import BackendUnavailableError, ConfigError
from omnisearch_embed.settings import Settings
from tests.helpers.backends import StaticBackend
from tests.local_server.serving import GatedBackend, serving
from tests.local_server.weaviate_client import check_ready, go_decode, go_marshal, go_post


def _poll_until(client: httpx.Client, status: int, polls: int = 200) -> httpx.Response:
    for _ in range(polls):
        response = check_ready(client)
        if response.status_code == status:
            return response
        time.sleep(0.05)
    raise AssertionError(f"ready never answered {status}")


def test_ready_waits_for_the_first_embedding_without_holding_the_poll(tiny: Any) -> None:
    gated = GatedBackend(tiny)
    gated.hold_next_call()  # the model is still busy loading, as far as the probe can tell
    with serving(gated, Settings()) as running, httpx.Client(base_url=running.url) as client:
        for _ in range(3):  # each poll answers inside 500 ms (check_ready's timeout) while the probe hangs
            response = check_ready(client)
            answer = go_decode(response.status_code, response.content)
            assert answer.status == 503 and answer.code == "not_ready"
        meta = client.get("/meta").json()
        assert meta["ready"] is False and meta["dimension"] is None
        assert gated.calls == [1]  # one probe in flight; the polls did not start more
        gated.release.set()
        response = _poll_until(client, 204)
        assert response.content == b""
        assert client.get("/meta").json()["dimension"] == tiny.dimension
        assert gated.calls == [1]


def test_a_failed_probe_is_retried_until_the_backend_answers() -> None:
    backend = StaticBackend(model_id="tiny-shapes", fail_with=BackendUnavailableError("endpoint is Creating"))
    with serving(backend, Settings()) as running, httpx.Client(base_url=running.url) as client:
        assert "endpoint is Creating" in go_decode(503, check_ready(client).content).error
        backend.fail_with = None
        _poll_until(client, 204)
        probes = len(backend.calls)
        for _ in range(5):
            assert check_ready(client).status_code == 204
        assert len(backend.calls) == probes  # cached from now on


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def unreachable_endpoint() -> Iterator[str]:
    settings = Settings(use_sagemaker=True, sagemaker_endpoint_name="clip", backend_timeout_seconds=2.0)
    client = boto3.client(
        "sagemaker-runtime",
        region_name="us-east-1",
        endpoint_url=f"http://127.0.0.1:{_closed_port()}",
        config=client_config(settings.backend_timeout_seconds),
    )
    backend = SageMakerBackend("clip", "ViT-B-32/openai", client=client, timeout_seconds=2.0)
    with serving(backend, settings) as running:
        yield running.url


def test_sagemaker_mode_is_not_ready_while_the_endpoint_cannot_be_reached(unreachable_endpoint: str) -> None:
    with httpx.Client(base_url=unreachable_endpoint) as client:
        for _ in range(200):
            response = check_ready(client)
            assert response.status_code == 503
            if "SageMaker endpoint clip" in (error := go_decode(503, response.content).error):
                break
            time.sleep(0.05)
        assert "SageMaker endpoint clip" in error
        assert client.get("/meta").json()["ready"] is False
    answer = go_post(unreachable_endpoint, go_marshal(["a red circle"], None))
    assert answer.status == 503 and answer.code == "endpoint_unreachable"


# -- where the routes are served -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "flag,environ,api_key,enabled",
    [
        (None, {}, "", True),  # the default: on
        (None, {}, "secret", False),  # a server that must check keys opens no keyless route by itself
        (None, {"WEAVIATE_ROUTES": "true"}, "secret", True),
        (None, {"WEAVIATE_ROUTES": "off"}, "", False),
        (False, {"WEAVIATE_ROUTES": "true"}, "", False),  # the flag wins
        (True, {}, "secret", True),
    ],
)
def test_the_routes_are_on_unless_a_key_is_set_or_they_are_turned_off(
    flag: bool | None, environ: dict[str, str], api_key: str, enabled: bool
) -> None:
    assert choose(flag, environ, api_key) is enabled


def test_flags_and_bad_values() -> None:
    assert parse_args([]).weaviate is None
    assert parse_args(["--no-weaviate"]).weaviate is False and parse_args(["--weaviate"]).weaviate is True
    with pytest.raises(ConfigError, match="WEAVIATE_ROUTES"):
        choose(None, {"WEAVIATE_ROUTES": "maybe"}, "")


def test_the_banner_says_where_weaviate_should_point_and_that_no_key_guards_it(tiny: Any) -> None:
    on = banner("http://10.0.0.5:8000", tiny, Settings(api_key="k"), 4, weaviate=True)
    assert "CLIP_INFERENCE_API=http://10.0.0.5:8000" in on and "WITHOUT the API key" in on and "private" in on
    assert "Weaviate     off" in banner("http://h:1", tiny, Settings(), 4, weaviate=False)


def test_with_an_api_key_the_routes_are_absent_unless_enabled_and_then_keyless() -> None:
    keyed = Settings(api_key="secret")
    with serving(StaticBackend(), keyed) as running:
        response = httpx.post(f"{running.url}/vectorize", content=go_marshal(["a"], None), timeout=5)
        assert response.status_code == 401  # the public API's catch-all answered: no such route here
    with serving(StaticBackend(), keyed, weaviate=True) as running:
        assert go_post(running.url, go_marshal(["a"], None)).status == 200
        assert httpx.post(f"{running.url}/embed/text", json={"text": "a"}, timeout=5).status_code == 401
