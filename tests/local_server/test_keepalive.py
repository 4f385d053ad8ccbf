"""Kept-alive connections must be as fast as fresh ones: sockets accepted by the server have Nagle's algorithm off.

With Nagle on, a response written in several pieces (uvicorn writes the headers, then the body, then for a
streamed body its end) leaves the later pieces waiting for the client's delayed ACK, ~40 ms on Linux, on
every request after a connection's first. The app here streams its body, which always writes three pieces;
the sockets under test are made by ``local_server.cli.bind``, as the server's are.
"""

from __future__ import annotations

import http.client
import importlib.util
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import uvicorn

from local_server.cli import bind

LOOPS = ["asyncio"] + (["uvloop"] if importlib.util.find_spec("uvloop") else [])


async def _streamed(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})  # no content-length: chunked, three writes


@contextmanager
def _uvicorn(sock: socket.socket, loop: str) -> Iterator[uvicorn.Server]:
    server = uvicorn.Server(uvicorn.Config(_streamed, loop=loop, log_level="warning", log_config=None, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    try:
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        yield server
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def _protocol_0_socket() -> socket.socket:
    """What bind() must not make: asyncio leaves Nagle on for connections accepted from it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock


def _get(client: http.client.HTTPConnection) -> float:
    began = time.perf_counter()
    client.request("GET", "/")
    response = client.getresponse()
    assert response.read() == b"ok"
    return time.perf_counter() - began


def _accepted_nodelay(sock: socket.socket, loop: str) -> list[int]:
    """TCP_NODELAY on the server side of one kept-alive connection, read from uvicorn's own transports."""
    with _uvicorn(sock, loop) as server:
        client = http.client.HTTPConnection("127.0.0.1", sock.getsockname()[1], timeout=10)
        try:
            _get(client)
            transports = [c.transport for c in server.server_state.connections]
            return [t.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for t in transports]
        finally:
            client.close()


@pytest.mark.parametrize("loop", LOOPS)
def test_accepted_connections_have_nagle_off(loop: str) -> None:
    flags = _accepted_nodelay(bind("127.0.0.1", 0), loop)
    assert len(flags) == 1 and flags[0] != 0


def test_the_check_sees_nagle_on_a_protocol_0_socket() -> None:
    assert _accepted_nodelay(_protocol_0_socket(), "asyncio") == [0]


def _medians(sock: socket.socket, count: int = 15) -> tuple[float, float]:
    """(fresh, kept-alive) median seconds of a GET: a new connection each time, then one connection for all."""
    port = sock.getsockname()[1]
    with _uvicorn(sock, "asyncio"):
        fresh = []
        for _ in range(count):
            client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            fresh.append(_get(client))
            client.close()
        client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            _get(client)
            kept = [_get(client) for _ in range(count)]
        finally:
            client.close()
    return statistics.median(fresh), statistics.median(kept)


def test_a_kept_alive_request_costs_no_more_than_a_fresh_one() -> None:
    fresh, kept = _medians(bind("127.0.0.1", 0))
    # With Nagle on, a kept-alive request waits ~40 ms for a delayed ACK, against well under 5 ms fresh.
    assert kept <= 3 * fresh + 0.005, f"kept-alive median {kept * 1e3:.1f} ms against fresh {fresh * 1e3:.1f} ms"
