"""``serve_in_thread``: a LocalServer under uvicorn on a background thread (tests, notebooks).

Apart from ``server`` so that ``cli`` (which builds a LocalServer) and ``server`` import each other in neither
direction; this module uses both.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

from local_server.cli import KEEP_ALIVE_SECONDS, bind
from local_server.server import LocalServer


@contextlib.contextmanager
def serve_in_thread(server: LocalServer, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``server`` with uvicorn on a background thread; yields its base URL."""
    import uvicorn

    sock = bind(host, port)
    config = uvicorn.Config(
        server.asgi, log_level="warning", log_config=None, timeout_keep_alive=KEEP_ALIVE_SECONDS, lifespan="on"
    )
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    try:
        while not uv.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        uv.should_exit = True
        thread.join(30)
        sock.close()
