"""The SageMaker runtime front's container, counting what it forwards: how a test knows how many invocations
reached the endpoint (a hung one must get exactly one)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from local_server.sagemaker_emulation import HttpContainer


class CountingContainer:
    """The front's HTTP container, counting the invocations it forwards; ``serving`` points it at another."""

    def __init__(self, url: str) -> None:
        self.target = HttpContainer(url, timeout_seconds=60)
        self.count = 0

    async def invoke(self, body: bytes, content_type: str, accept: str) -> Any:
        self.count += 1
        return await self.target.invoke(body, content_type, accept)

    @contextmanager
    def serving(self, url: str) -> Iterator[None]:
        """The container at ``url`` takes the invocations until the block ends."""
        previous, self.target = self.target, HttpContainer(url, timeout_seconds=60)
        try:
            yield
        finally:
            self.target = previous
