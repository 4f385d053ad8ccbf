"""The context object a Lambda handler gets, for running the handlers outside Lambda.

The local server, the tests and the benchmarks all pass this one class: it has what Powertools' decorators
read (function name, ARN, memory, request id) and a ``get_remaining_time_in_millis`` that counts down from
its creation, so the handler's time budget (:mod:`omnisearch_embed.deadline`) works as under Lambda.
It imports nothing beyond the standard library, so tests and benchmarks may use it without the server.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

FUNCTION_NAME = "omnisearch-embed-local"


@dataclass
class LambdaContext:
    """A Lambda context whose invocation started at creation and may run ``timeout_seconds`` (API Gateway's 29 s)."""

    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_name: str = FUNCTION_NAME
    function_version: str = "$LATEST"
    invoked_function_arn: str = f"arn:aws:lambda:us-east-1:123456789012:function:{FUNCTION_NAME}"
    memory_limit_in_mb: int = 1024
    log_group_name: str = f"/aws/lambda/{FUNCTION_NAME}"
    log_stream_name: str = "local"
    timeout_seconds: float = 29.0
    started: float = field(default_factory=time.monotonic)

    @property
    def ends_at(self) -> float:
        """When Lambda would stop the invocation, on the ``time.monotonic()`` clock."""
        return self.started + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.ends_at - time.monotonic()) * 1000))
