"""The Backend protocol: what the API layer needs from anything that can embed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from omnisearch_embed.embeddings import Embeddings


@runtime_checkable
class Backend(Protocol):
    """Anything that turns texts or image bytes into CLIP vectors.

    ``model_id`` names the model (``ViT-B-32/openai``, ``tiny-shapes``): vectors from two
    different ids must never meet in one index. ``service`` is ``"sagemaker"``, ``"lambda-model"`` or ``"local"``.
    Implementations raise :mod:`omnisearch_embed.errors` exceptions, never raw SDK errors.
    """

    model_id: str
    service: str

    def embed_texts(self, texts: Sequence[str], *, normalize: bool = True) -> Embeddings: ...

    def embed_images(self, images: Sequence[bytes], *, normalize: bool = True) -> Embeddings: ...

    def health(self) -> dict[str, Any]: ...
