"""EmbedService: the one object routes call. It owns the limits, the image checks and the timing.

Routes (``/embed/*`` and the OpenAI-compatible ``/v1/embeddings``) parse requests and render
responses; everything between, from "is this batch too big" to "which service answered and how fast",
happens here once, so the two API families cannot drift apart.

Long texts: up to ``max_text_chars`` (10,000 by default) a text is accepted and the model truncates
it to CLIP's 77 tokens, which the response flags with ``truncated: true``; beyond the limit it is
refused with 413 ``text_too_long`` (no one means to embed a whole book into 77 tokens).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from omnisearch_embed.backends.base import Backend
from omnisearch_embed.embeddings import Embeddings, used_fallback
from omnisearch_embed.errors import INVALID_TEXT, EmbedError, InvalidInputError, ModelError, PayloadTooLargeError
from omnisearch_embed.health_report import health_report, ms_since
from omnisearch_embed.images import decode_inline_image, is_s3_uri, reject_remote_url, validate_image
from omnisearch_embed.naming import Namer, item_namer, naming
from omnisearch_embed.s3_images import S3ImageFetcher
from omnisearch_embed.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EmbedStats:
    """What one backend call did, for metrics: ``kind`` is ``text`` or ``image``."""

    kind: str
    items: int
    latency_ms: float
    service: str
    fallback: bool


Prepared = Callable[[], Embeddings]  # inputs already checked; calling it embeds them


def _utf8_length(text: str, where: str | None) -> int:
    """Bytes of ``text`` in UTF-8; a lone surrogate (JSON ``"\\ud800"``) has none, so it is the caller's 400."""
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError as e:
        raise InvalidInputError(
            f"{where or 'text'} is not valid Unicode: a lone surrogate U+{ord(text[e.start]):04X} at character "
            f"{e.start} (a \\u escape for a character beyond U+FFFF must be a high-low pair)",
            code=INVALID_TEXT,
            param=where,
        ) from e


class EmbedService:
    """Validates inputs against :class:`Settings` limits, calls the backend, reports :class:`EmbedStats`."""

    def __init__(
        self,
        backend: Backend,
        settings: Settings,
        *,
        s3: S3ImageFetcher | None = None,
        on_embedded: Callable[[EmbedStats], None] | None = None,
    ) -> None:
        self.backend = backend
        self.settings = settings
        self.s3 = s3 if s3 is not None else S3ImageFetcher(settings)
        self.on_embedded = on_embedded

    @property
    def model_id(self) -> str:
        return self.backend.model_id

    # ----------------------------------------------------------------- texts
    def embed_texts(
        self,
        texts: Sequence[str],
        *,
        normalize: bool = True,
        param: str | None = "texts",
        positions: Sequence[int] | None = None,
    ) -> Embeddings:
        """Embed texts in order; refuses empty, over-long and over-count input before the backend sees it.

        ``positions``: where these texts stand in the caller's list, for error names (see :func:`item_namer`).
        """
        return self.prepare_texts(texts, normalize=normalize, param=param, positions=positions)()

    def prepare_texts(
        self,
        texts: Sequence[str],
        *,
        normalize: bool = True,
        param: str | None = "texts",
        positions: Sequence[int] | None = None,
    ) -> Prepared:
        """Check ``texts`` now, as :meth:`embed_texts` does; the call returned embeds them (no backend call yet)."""
        name = self.check_texts(texts, param=param, positions=positions)
        return lambda: self.embed_checked_texts(texts, name, normalize)

    def embed_checked_texts(self, texts: Sequence[str], name: Namer, normalize: bool = True) -> Embeddings:
        """Embed texts :meth:`check_texts` has passed (``name`` is its namer), without checking them again."""
        return self._call("text", len(texts), lambda: self.backend.embed_texts(list(texts), normalize=normalize), name)

    def check_texts(
        self, texts: Sequence[str], *, param: str | None = "texts", positions: Sequence[int] | None = None
    ) -> Namer:
        """Refuse empty, over-long and over-count texts (what :meth:`embed_texts` checks first); their namer."""
        self.check_count(len(texts), param)
        name = item_namer(param, len(texts), positions)
        limit = self.settings.max_text_chars
        total = 0
        for i, text in enumerate(texts):
            where = name(i)
            if not isinstance(text, str):
                raise InvalidInputError(f"{where or 'text'} must be a string", code="invalid_input", param=where)
            if not text.strip():
                raise InvalidInputError(f"{where or 'text'} is empty", code="empty_text", param=where)
            if len(text) > limit:
                raise PayloadTooLargeError(
                    f"{where or 'text'} has {len(text)} characters, over the {limit}-character limit "
                    "(CLIP reads about 77 tokens; up to the limit longer text is truncated and flagged)",
                    code="text_too_long",
                    param=where,
                )
            total += _utf8_length(text, where)
        self._check_total(total, param)
        return name

    # ---------------------------------------------------------------- images
    def embed_image_refs(
        self,
        refs: Sequence[str],
        *,
        normalize: bool = True,
        param: str | None = "images",
        positions: Sequence[int] | None = None,
    ) -> Embeddings:
        """Embed images given as base64, data URIs or allowed ``s3://`` URIs (never http URLs), in order."""
        return self.prepare_image_refs(refs, normalize=normalize, param=param, positions=positions)()

    def prepare_image_refs(
        self,
        refs: Sequence[str],
        *,
        normalize: bool = True,
        param: str | None = "images",
        positions: Sequence[int] | None = None,
    ) -> Prepared:
        """Decode, fetch (S3) and check every image now; the call returned embeds them."""
        self.check_count(len(refs), param)
        name = item_namer(param, len(refs), positions)
        max_bytes = self.settings.max_image_bytes
        images: list[bytes | None] = []
        s3_slots: list[tuple[int, str]] = []
        for i, ref in enumerate(refs):
            where = name(i)
            if not isinstance(ref, str) or not ref.strip():
                raise InvalidInputError(f"{where or 'image'} is empty", code="empty_image", param=where)
            with naming(where):
                reject_remote_url(ref.strip())
                if is_s3_uri(ref.strip()):
                    s3_slots.append((i, ref.strip()))
                    images.append(None)
                else:
                    images.append(decode_inline_image(ref, max_bytes=max_bytes))
        inline_total = sum(len(b) for b in images if b is not None)
        self._check_total(inline_total, param)
        if s3_slots:  # S3 bytes never pass through the Lambda event: their own budget, split across invokes
            fetched = self.s3.fetch_many(
                [uri for _, uri in s3_slots],
                total_limit=self.settings.max_s3_batch_bytes,
                names=[name(i) for i, _ in s3_slots],
            )
            for (i, _), data in zip(s3_slots, fetched, strict=True):
                images[i] = data
        return self._prepare_images([b for b in images if b is not None], normalize=normalize, name=name)

    def embed_image_bytes(
        self, images: Sequence[bytes], *, normalize: bool = True, param: str | None = "image"
    ) -> Embeddings:
        """Embed raw image files (PNG/JPEG/WebP/GIF) after checking bytes, format, pixels and integrity."""
        return self.prepare_image_bytes(images, normalize=normalize, param=param)()

    def prepare_image_bytes(
        self, images: Sequence[bytes], *, normalize: bool = True, param: str | None = "image"
    ) -> Prepared:
        """Check raw image files now, as :meth:`embed_image_bytes` does; the call returned embeds them."""
        self.check_count(len(images), param)
        self._check_total(sum(len(b) for b in images), param)
        return self._prepare_images(images, normalize=normalize, name=item_namer(param, len(images)))

    def _prepare_images(self, images: Sequence[bytes], *, normalize: bool, name: Namer) -> Prepared:
        for i, data in enumerate(images):
            with naming(name(i)):
                validate_image(data, max_bytes=self.settings.max_image_bytes, max_pixels=self.settings.max_image_pixels)
        embed = self.backend.embed_images
        return lambda: self._call("image", len(images), lambda: embed(list(images), normalize=normalize), name)

    # ---------------------------------------------------------------- health
    def health(self, *, deep: bool = False) -> dict[str, Any]:
        """Backend status; with ``deep`` also one real embedding through the backend, timed and checked."""
        return health_report(self.backend, self.model_id, deep=deep)

    # --------------------------------------------------------------- helpers
    def check_count(self, count: int, param: str | None) -> None:
        if count == 0:
            raise InvalidInputError("send at least one item", code="empty_batch", param=param)
        if count > self.settings.max_batch_items:
            raise PayloadTooLargeError(
                f"{count} items is over the limit of {self.settings.max_batch_items} per request",
                code="too_many_items",
                param=param,
            )

    def _check_total(self, total_bytes: int, param: str | None) -> None:
        if total_bytes > self.settings.max_request_bytes:
            raise PayloadTooLargeError(
                f"the request carries {total_bytes} bytes, over the {self.settings.max_request_bytes}-byte limit",
                code="request_too_large",
                param=param,
            )

    def _call(self, kind: str, items: int, call: Callable[[], Embeddings], name: Namer) -> Embeddings:
        """Run one backend call; an item the backend refuses is named by ``name(index)``, the caller's name."""
        start = time.perf_counter()
        try:
            emb = call()
        except EmbedError as e:
            if e.index is not None and 0 <= e.index < items:
                e.named(name(e.index))
            raise
        latency = ms_since(start)
        if emb.count != items:
            raise ModelError(f"the backend returned {emb.count} vectors for {items} inputs", code="model_error")
        if self.on_embedded is not None:
            stats = EmbedStats(kind, items, latency, emb.service, used_fallback(emb))
            try:
                self.on_embedded(stats)
            except Exception:  # metrics must never fail a request that succeeded
                logger.exception("on_embedded hook failed")
        return emb
