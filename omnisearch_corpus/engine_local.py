"""``--engine local``: the model in this process, through the local server's LocalClipBackend.

That backend runs model_code's own ``predict_fn``, whose decode threads turn image files into pixels while
the model works on the batch before, so the vectors are the container's. One model thread does the torch
work; the pipeline's reader threads keep it fed.
"""

from __future__ import annotations

from collections.abc import Sequence

from omnisearch_corpus.engines import Answer, BatchResult, from_embeddings, isolating, rejected
from omnisearch_embed.errors import EmbedError


class LocalEngine:
    name = "local"

    def __init__(self, model: str, pretrained: str = "", device: str | None = None) -> None:
        from local_server.clip_backend import LocalClipBackend  # torch: only for this engine

        self.backend = LocalClipBackend(model, pretrained=pretrained, device=device)
        self.model_id: str | None = self.backend.model_id
        self.dimension = self.backend.dimension

    def _call(self, kind: str, payloads: list[bytes | str]) -> Answer:
        try:
            if kind == "text":
                return from_embeddings(self.backend.embed_texts([str(p) for p in payloads]))
            return from_embeddings(self.backend.embed_images([bytes(p) for p in payloads]))  # type: ignore[arg-type]
        except EmbedError as e:
            item = rejected(e)
            if item is None:
                raise
            raise item from e

    def embed(self, kind: str, payloads: Sequence[bytes | str]) -> BatchResult:
        return isolating(lambda batch: self._call(kind, batch), payloads)

    def close(self) -> None:
        pass
