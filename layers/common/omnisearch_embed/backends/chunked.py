"""What SageMakerBackend and LambdaModelBackend share: a batch split into wire chunks, sent under one deadline.

Both send the model code's wire (wire.py) to something that runs inference.py, an endpoint or the model
function; only how one chunk travels differs (``_invoke``). Every chunk and retry shares the request's
deadline, narrowed to the backend's own ``timeout_seconds``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from omnisearch_embed import deadline
from omnisearch_embed.backends import wire
from omnisearch_embed.embeddings import Embeddings
from omnisearch_embed.errors import InvalidInputError

logger = logging.getLogger(__name__)


class ChunkedBackend:
    """The Backend calls over ``_invoke(chunk, texts)``; subclasses set the attributes below in ``__init__``."""

    model_id: str
    timeout_seconds: float
    max_invoke_bytes: int
    max_concurrency: int
    target: str  # what serves, for messages: "endpoint <name>" or "function <name>"
    _reported_models: set[str]  # models answered other than ``model_id``, each warned about once

    def embed_texts(self, texts: Sequence[str], *, normalize: bool = True) -> Embeddings:
        if not texts:
            raise InvalidInputError("no texts to embed", code="empty_batch")
        return self._run(wire.text_chunks(texts, normalize=normalize, max_bytes=self.max_invoke_bytes), texts=True)

    def embed_images(self, images: Sequence[bytes], *, normalize: bool = True) -> Embeddings:
        if not images:
            raise InvalidInputError("no images to embed", code="empty_batch")
        return self._run(wire.image_chunks(images, normalize=normalize, max_bytes=self.max_invoke_bytes), texts=False)

    def _run(self, chunks: list[wire.Chunk], *, texts: bool) -> Embeddings:
        with deadline.scope(time.monotonic() + self.timeout_seconds):
            result = wire.send_chunks(
                chunks, lambda chunk: self._invoke(chunk, texts), max_concurrency=self.max_concurrency
            )
        if result.model != self.model_id and result.model not in self._reported_models:
            self._reported_models.add(result.model)
            logger.warning(
                "%s serves model %r, configured as %r; responses name its model", self.target, result.model,
                self.model_id,
            )  # fmt: skip
        return result

    def _invoke(self, chunk: wire.Chunk, texts: bool) -> Embeddings:
        raise NotImplementedError
