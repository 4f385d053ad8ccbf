"""The deadline-aware botocore retry policy on a real client: what is retried, and each attempt's read timeout."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError, ReadTimeoutError

from omnisearch_embed import deadline
from omnisearch_embed.backends import retries
from omnisearch_embed.backends.sagemaker import SageMakerBackend
from omnisearch_embed.errors import BackendTimeoutError
from omnisearch_testkit.sagemaker_stubs import container_server, runtime_client

CONNECT = 0.5


def client() -> Any:
    config = retries.client_config(connect_timeout=CONNECT, read_timeout=30, max_attempts=3)
    return retries.install(runtime_client(config=config, endpoint_url="http://127.0.0.1:9"))


def attempts(raised: Exception, *, budget: float | None = 20.0) -> list[float | None]:
    """The read timeout each attempt was sent with, until ``raised`` stops the retries."""
    runtime = client()
    sent: list[float | None] = []

    def fail(request: Any, **_: Any) -> None:
        sent.append(request.context.get("read_timeout"))
        raise raised

    runtime.meta.events.register("before-send.sagemaker-runtime.InvokeEndpoint", fail)
    at = None if budget is None else time.monotonic() + budget
    with deadline.scope(at), pytest.raises(type(raised)):
        runtime.invoke_endpoint(EndpointName="e", ContentType="application/json", Body=b"{}")
    return sent


def test_a_read_timeout_is_never_retried_and_reads_for_what_the_deadline_leaves() -> None:
    (read_timeout,) = attempts(ReadTimeoutError(endpoint_url="http://x"), budget=12.0)
    assert read_timeout is not None and 12.0 - CONNECT - 0.5 < read_timeout <= 12.0 - CONNECT


def test_a_dropped_connection_mid_request_is_not_retried() -> None:
    assert len(attempts(ConnectionClosedError(endpoint_url="http://x"))) == 1


def test_a_failed_connect_is_retried_up_to_max_attempts() -> None:
    sent = attempts(EndpointConnectionError(endpoint_url="http://x"))
    assert len(sent) == 3
    assert sent == sorted(sent, reverse=True)  # each retry reads for what is left then, not a fixed slice


def test_no_attempt_is_started_without_the_time_to_run_it() -> None:
    assert len(attempts(EndpointConnectionError(endpoint_url="http://x"), budget=retries.MIN_ATTEMPT_SECONDS)) == 1


def test_without_a_deadline_the_clients_own_read_timeout_applies() -> None:
    assert attempts(ReadTimeoutError(endpoint_url="http://x"), budget=None) == [None]


def test_the_deadline_cuts_a_read_from_a_server_that_never_answers() -> None:
    """Through a real client and socket: fails if botocore stops honouring the per-attempt read timeout."""
    client_read_timeout = 600.0  # what the read would last if the deadline did not shorten it
    outcome: list[BaseException] = []
    with container_server("m", delay=float("inf")) as server:
        config = retries.client_config(connect_timeout=CONNECT, read_timeout=client_read_timeout, max_attempts=3)
        runtime = retries.install(runtime_client(config=config, endpoint_url=server.url))
        backend = SageMakerBackend("e", "m", client=runtime, timeout_seconds=1.0)

        def call() -> None:
            try:
                backend.embed_texts(["a"])
            except BaseException as e:  # handed to the test thread
                outcome.append(e)

        caller = threading.Thread(target=call, daemon=True)
        caller.start()
        caller.join(timeout=client_read_timeout / 10)  # a generous bound, far below the client's own timeout
        cut = not caller.is_alive()
    assert cut, "the read outlived the deadline: botocore no longer applies request.context['read_timeout']"
    (error,) = outcome
    assert isinstance(error, BackendTimeoutError) and error.code == "backend_timeout"
    assert server.count("e") == 1  # a read timeout is never resent
