"""Helpers for the local server tests: a gated backend, a server on an ephemeral port, image bytes."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from PIL import Image

from local_server.background import serve_in_thread
from local_server.batched_backend import BatchedBackend
from local_server.server import LocalServer
from omnisearch_embed.embeddings import Embeddings
from omnisearch_embed.errors import ModelError
from omnisearch_embed.settings import Settings


class GatedBackend:
    """Delegates to the real model; counts calls, can hold the next call, fails on "poison" texts.

    The gate lets a test pile requests up behind a busy model deterministically; poison stands for an
    input that only the model (not the API's validation) finds unusable.
    """

    POISON = "__poison__"

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.service = inner.service
        self.calls: list[int] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self._lock = threading.Lock()

    def hold_next_call(self) -> None:
        self.entered.clear()
        self.release.clear()

    def _enter(self, items: Sequence[Any]) -> None:
        with self._lock:
            self.calls.append(len(items))
        if not self.release.is_set():
            self.entered.set()
            assert self.release.wait(30)
        if self.POISON in items:
            raise ModelError("the model choked on this input", code="model_error")

    def embed_texts(self, texts: Sequence[str], *, normalize: bool = True) -> Embeddings:
        self._enter(texts)
        return self.inner.embed_texts(texts, normalize=normalize)

    def embed_images(self, images: Sequence[bytes], *, normalize: bool = True) -> Embeddings:
        self._enter(images)
        return self.inner.embed_images(images, normalize=normalize)

    def health(self) -> dict[str, Any]:
        return self.inner.health()


@dataclass
class Running:
    url: str
    server: LocalServer


@contextmanager
def serving(
    backend: Any,
    settings: Settings,
    *,
    local_model: Any = None,
    workers: int = 32,
    weaviate: bool | None = None,
    index: Any = None,
) -> Iterator[Running]:
    """A LocalServer on 127.0.0.1:<free port>, served by uvicorn in a thread, stopped on exit."""
    server = LocalServer(backend, settings, local_model=local_model, workers=workers, weaviate=weaviate, index=index)
    with serve_in_thread(server) as url:
        yield Running(url, server)


@dataclass
class MainServer(Running):
    gated: GatedBackend
    batcher: BatchedBackend


def png_bytes(image: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return buf.getvalue()
