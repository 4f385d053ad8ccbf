"""A thin SageMaker runtime in front of a real container: ``InvokeEndpoint`` forwarded to its /invocations.

    with RuntimeFront(toolkit.url) as front:
        client = boto3.client("sagemaker-runtime", endpoint_url=front.url)

The body, Content-Type and Accept go to the container unchanged; a 2xx answer comes back as is. Any other
answer is wrapped the way runtime.sagemaker.amazonaws.com wraps container errors (botocore's model of
ModelError: HTTP 424, ``x-amzn-ErrorType: ModelError``, JSON ``Message``, ``OriginalStatusCode``,
``OriginalMessage`` = the container's body, ``LogStreamArn``), so what SageMakerBackend does with it here
is what it does in AWS (the wrapping is the local emulation's own). Signatures are not checked.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from local_server.sagemaker_emulation import ERROR_NAMESPACE, VARIANT, model_error_body

REGION = "us-east-1"
_PATH = re.compile(r"^/endpoints/([^/]+)/invocations$")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _FrontServer

    def do_POST(self) -> None:
        match = _PATH.match(urllib.parse.urlsplit(self.path).path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        request_id = str(uuid.uuid4())
        if not match:
            self._send(404, b'{"message":"not found"}', "application/json", {"x-amzn-RequestId": request_id})
            return
        endpoint = urllib.parse.unquote(match.group(1))
        headers = {k: v for k in ("Content-Type", "Accept") if (v := self.headers.get(k))}
        target = urllib.parse.urlsplit(self.server.container_url)
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=self.server.timeout_seconds)
        try:
            connection.request("POST", "/invocations", body=body, headers=headers)
            answer = connection.getresponse()
            payload, status = answer.read(), answer.status
            content_type = answer.getheader("Content-Type") or "application/octet-stream"
        finally:
            connection.close()
        if 200 <= status < 300:
            extra = {"x-amzn-RequestId": request_id, "x-Amzn-Invoked-Production-Variant": VARIANT}
            self._send(200, payload, content_type, extra)
            return
        error = model_error_body(status, payload.decode("utf-8", "replace"), endpoint, REGION)
        extra = {"x-amzn-RequestId": request_id, "x-amzn-ErrorType": f"ModelError:{ERROR_NAMESPACE}"}
        self._send(424, json.dumps(error).encode(), "application/json", extra)

    def _send(self, status: int, payload: bytes, content_type: str, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


class _FrontServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, container_url: str, timeout_seconds: float) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.container_url, self.timeout_seconds = container_url, timeout_seconds


class RuntimeFront:
    """The front as a context manager: ``url`` is what boto3's ``endpoint_url`` should be."""

    def __init__(self, container_url: str, *, timeout_seconds: float = 60.0) -> None:
        self._server = _FrontServer(container_url.rstrip("/"), timeout_seconds)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="runtime-front", daemon=True)

    def __enter__(self) -> RuntimeFront:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._thread.join()
        self._server.server_close()
