"""What the SageMaker tests and benchmarks talk to: real boto3 clients, answered by Stubber or a local HTTP container.

``ContainerServer`` speaks the SageMaker runtime's HTTP API on 127.0.0.1 (POST /endpoints/<name>/invocations)
and answers like inference.py, with vectors derived from each item's content, so tests can check that a split
batch comes back in order, and time real read timeouts, without any network.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
from botocore.response import StreamingBody

from local_server.sagemaker_emulation import error_headers
from omnisearch_embed.embeddings import encode_matrix

REGION = "us-east-1"
DIMENSION = 8


def runtime_client(**kwargs: Any) -> Any:
    """A real sagemaker-runtime client with dummy credentials (Stubber or a local endpoint answers it)."""
    return boto3.client(
        "sagemaker-runtime", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing", **kwargs
    )


def item_vector(item: str | bytes, dimension: int = DIMENSION) -> list[float]:
    """A vector that depends only on the item, exact in float32 (multiples of 1/8)."""
    raw = item.encode("utf-8", "surrogatepass") if isinstance(item, str) else item
    digest = hashlib.sha256(raw).digest()
    return [digest[i] / 8 for i in range(dimension)]


def container_body(
    vectors: Sequence[Sequence[float]],
    model: str,
    *,
    truncated: Sequence[bool] | None = None,
    tokens: Sequence[int] | None = None,
    encoding: str = "base64",
) -> bytes:
    """A response body as inference.py's output_fn writes it."""
    embeddings: Any = encode_matrix(vectors) if encoding == "base64" else [list(v) for v in vectors]
    doc = {
        "model": model,
        "dimension": len(vectors[0]) if vectors else DIMENSION,
        "embeddings": embeddings,
        "truncated": list(truncated) if truncated is not None else None,
        "tokens": list(tokens) if tokens is not None else None,
    }
    return json.dumps(doc).encode()


def stub_response(body: bytes) -> dict[str, Any]:
    """An InvokeEndpoint response for Stubber (Body is a streaming blob)."""
    return {"Body": StreamingBody(io.BytesIO(body), len(body)), "ContentType": "application/json"}


def invoke_params(endpoint: str, body: bytes) -> dict[str, Any]:
    """Exactly what SageMakerBackend must send."""
    return {"EndpointName": endpoint, "ContentType": "application/json", "Accept": "application/json", "Body": body}


class ContainerServer:
    """A threaded HTTP server answering InvokeEndpoint like the model container would.

    ``delay`` holds every answer (``delays`` per endpoint name overrides it; ``float("inf")`` hangs until the
    server closes); ``throttle`` answers that many requests first with the runtime's 429 ThrottlingException.
    """

    def __init__(
        self, model: str, *, delay: float = 0.0, delays: dict[str, float] | None = None, throttle: int = 0
    ) -> None:
        self.model = model
        self.delay = delay
        self.delays = dict(delays or {})
        self.throttle = throttle
        self.released = threading.Event()
        self.bodies: list[bytes] = []
        self.paths: list[str] = []
        self.peak_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with server._lock:
                    server.bodies.append(body)
                    server.paths.append(self.path)
                    server._in_flight += 1
                    server.peak_in_flight = max(server.peak_in_flight, server._in_flight)
                try:
                    endpoint = self.path.split("/")[2] if self.path.startswith("/endpoints/") else ""
                    if server._throttled():
                        return self._answer(429, b'{"message": "Rate exceeded"}', "ThrottlingException")
                    delay = server.delays.get(endpoint, server.delay)
                    if delay:
                        server.released.wait(None if delay == float("inf") else delay)
                    answer = server.answer(json.loads(body))
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (read timeout tests)
                    pass
                finally:
                    with server._lock:
                        server._in_flight -= 1

            def _answer(self, status: int, body: bytes, error_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for name, value in error_headers(error_type, "stub-request").items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def count(self, endpoint: str) -> int:
        """Invocations that reached ``endpoint`` so far."""
        with self._lock:
            return sum(1 for path in self.paths if path == f"/endpoints/{endpoint}/invocations")

    def _throttled(self) -> bool:
        with self._lock:
            if self.throttle > 0:
                self.throttle -= 1
                return True
            return False

    def answer(self, request: dict[str, Any]) -> bytes:
        if "texts" in request:
            texts = request["texts"]
            return container_body(
                [item_vector(t) for t in texts],
                self.model,
                truncated=[len(t) > 300 for t in texts],
                tokens=[min(77, len(t.split()) + 2) for t in texts],
                encoding=request.get("encoding", "float"),
            )
        images = [base64.b64decode(i) for i in request["images"]]
        return container_body([item_vector(i) for i in images], self.model, encoding=request.get("encoding", "float"))


@contextmanager
def serving(server: ThreadingHTTPServer, released: threading.Event) -> Iterator[None]:
    """Serve ``server`` on a daemon thread; on exit set ``released`` first, so held answers end, then close it."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield
    finally:
        released.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def container_server(model: str, **options: Any) -> Iterator[ContainerServer]:
    server = ContainerServer(model, **options)
    with serving(server._server, server.released):
        yield server
