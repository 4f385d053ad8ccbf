"""The repository's SageMaker runtime front (local_server.sagemaker_emulation) before a container over HTTP.

    with RuntimeFront(toolkit.url) as front:
        client = boto3.client("sagemaker-runtime", endpoint_url=front.url)

The body, Content-Type and Accept go to the container unchanged; a 2xx answer comes back as is, any other is
wrapped as runtime.sagemaker.amazonaws.com wraps container errors (424 ModelError with ``OriginalStatusCode``
and ``OriginalMessage``). Signatures are not checked. ``host`` may be the Docker bridge's gateway, so that
a Lambda container reaches the front. ``components`` makes it an endpoint of inference components instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from local_server.background import serve_in_thread
from local_server.sagemaker_emulation import HttpContainer, InferenceComponent
from local_server.sagemaker_emulation import RuntimeFront as _Front

REGION = "us-east-1"


class RuntimeFront:
    """The front on a background uvicorn thread; ``url`` is what boto3's ``endpoint_url`` should be."""

    def __init__(
        self,
        container: str | HttpContainer | None = None,
        *,
        components: Mapping[str, InferenceComponent] | None = None,
        timeout_seconds: float = 60.0,
        host: str = "127.0.0.1",
    ) -> None:
        if isinstance(container, str):
            container = HttpContainer(container, timeout_seconds=timeout_seconds)
        self._front = _Front(container, region=REGION, components=components)
        self._host = host
        self._stack = contextlib.ExitStack()
        self.url = ""

    def __enter__(self) -> RuntimeFront:
        self.url = self._stack.enter_context(serve_in_thread(self._front, host=self._host))  # type: ignore[arg-type]
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stack.close()
