"""The conftest's network guard: local sockets work, anything else is refused."""

from __future__ import annotations

import socket

import pytest
from pytest_socket import SocketConnectBlockedError


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
def test_outside_hosts_are_blocked() -> None:
    with pytest.raises(SocketConnectBlockedError), socket.socket() as s:
        s.connect(("93.184.216.34", 443))


def test_localhost_is_allowed() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=2) as client:
            assert client.getpeername() == server.getsockname()
