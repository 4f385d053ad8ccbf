"""Whether a server keeps an idle kept-alive connection open, checked on the socket itself.

HTTP clients (httpx, requests) quietly reconnect when they find a pooled connection closed, so they cannot
tell; a client that sends on the connection just as the server closes it gets an error instead. This asks
the socket whether the peer has closed it, then uses it again.
"""

from __future__ import annotations

import http.client
import select
import socket
import time

UVICORN_DEFAULT_KEEP_ALIVE_S = 5  # uvicorn's timeout_keep_alive when nothing sets it


def survives_idle(host: str, port: int, path: str, idle_s: float = UVICORN_DEFAULT_KEEP_ALIVE_S + 1.5) -> bool:
    """GET ``path``, stay idle ``idle_s`` seconds, then GET it again on the same connection: both answered?"""
    connection = http.client.HTTPConnection(host, port, timeout=30)
    try:
        connection.request("GET", path)
        connection.getresponse().read()
        time.sleep(idle_s)
        sock = connection.sock
        readable, _, _ = select.select([sock], [], [], 0)
        if readable and sock.recv(1, socket.MSG_PEEK) == b"":
            return False  # the server closed it while it was idle
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return connection.sock is sock and response.status < 500
    finally:
        connection.close()
