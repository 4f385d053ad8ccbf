"""``--engine endpoint``: InvokeEndpoint on the SageMaker endpoint directly, through the core's SageMakerBackend.

The backend splits each batch under the 6 MB invoke limit and sends the pieces side by side; the pipeline
runs several batches at once. The backend's retry policy (botocore's ``standard`` mode, see
``omnisearch_embed.backends.retries``) handles throttling. A container that refuses an
input (an unreadable image: the backend maps the container's 4xx to the API's) isolates that item; an
endpoint that is down, or a model that fails (a 502), stops the run, which resumes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.config import Config

from omnisearch_corpus.engines import Answer, BatchResult, from_embeddings, isolating, rejected
from omnisearch_embed.backends.sagemaker import SageMakerBackend, client_config
from omnisearch_embed.errors import EmbedError


class EndpointEngine:
    name = "endpoint"

    def __init__(
        self,
        endpoint_name: str,
        *,
        session: Any = None,
        endpoint_url: str | None = None,
        model_id: str | None = None,
        timeout_seconds: float = 60.0,
        concurrency: int = 4,
    ) -> None:
        import boto3

        session = session or boto3.session.Session()
        client = session.client(
            "sagemaker-runtime",
            endpoint_url=endpoint_url or None,
            config=client_config(timeout_seconds).merge(Config(max_pool_connections=max(10, 4 * concurrency))),
        )
        self.model_id: str | None = model_id
        self.backend = SageMakerBackend(
            endpoint_name, model_id or "unknown", client=client, timeout_seconds=timeout_seconds
        )

    def _call(self, kind: str, payloads: list[Any]) -> Answer:
        try:
            if kind == "text":
                emb = self.backend.embed_texts([str(p) for p in payloads])
            else:
                emb = self.backend.embed_images([bytes(p) for p in payloads])
        except EmbedError as e:
            item = rejected(e)
            if item is None:
                raise
            raise item from e
        return from_embeddings(emb)

    def embed(self, kind: str, payloads: Sequence[bytes | str]) -> BatchResult:
        result = isolating(lambda batch: self._call(kind, batch), payloads)
        if self.model_id is None and result.model:
            self.model_id = result.model
        return result

    def close(self) -> None:
        pass
