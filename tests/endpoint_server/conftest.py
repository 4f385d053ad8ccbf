"""The archive as package_model.py builds it, unpacked as SageMaker unpacks it, and servers over it.

``gated``: the archive's inference.py behind a gate that can hold the next ``predict_fn`` call (so requests
pile up behind a busy model deterministically) and that fails on a poison text (an input only the model
finds unusable). ``start``: an EndpointServer over it, served by uvicorn on an ephemeral port.
"""

from __future__ import annotations

import tarfile
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from endpoint_server.app import EndpointServer, ServerConfig
from endpoint_server.model import load_inference
from local_server.background import serve_in_thread

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from omnisearch_ops import package_model

    work = tmp_path_factory.mktemp("archive")
    archive = package_model.build_archive("tiny-shapes", "", work / "model.tar.gz")
    target = work / "model"
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(target, filter="data")
    return target


@pytest.fixture(scope="session")
def inference(model_dir: Path) -> ModuleType:
    return load_inference(model_dir)


@pytest.fixture(scope="session")
def model(inference: ModuleType, model_dir: Path) -> Any:
    return inference.model_fn(str(model_dir))


class GatedInference:
    """The real inference module, with a ``predict_fn`` that records calls, can be held, and fails on poison."""

    POISON = "__poison__"

    def __init__(self, real: ModuleType) -> None:
        self.real = real
        self.calls: list[tuple[str, int, bool]] = []
        self.entered, self.release = threading.Event(), threading.Event()
        self.release.set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def hold_next_call(self) -> None:
        self.entered.clear()
        self.release.clear()

    def predict_fn(self, data: Any, model: Any) -> Any:
        self.calls.append((data.kind, len(data.items), data.normalize))
        if not self.release.is_set():
            self.entered.set()
            assert self.release.wait(30)
        if self.POISON in data.items:
            raise RuntimeError("the model choked on this input")
        return self.real.predict_fn(data, model)


@pytest.fixture
def gated(inference: ModuleType) -> GatedInference:
    return GatedInference(inference)


@pytest.fixture
def start(gated: GatedInference, model: Any) -> Iterator[Callable[..., tuple[str, EndpointServer]]]:
    """``start(**config)`` -> (base URL, server): an EndpointServer over the gated archive model."""
    with ExitStack() as stack:

        def run(loader: Callable[[], Any] | None = None, **config: Any) -> tuple[str, EndpointServer]:
            server = EndpointServer(ServerConfig(**config), loader=loader or (lambda: (gated, model)))
            return stack.enter_context(serve_in_thread(server)), server  # any object with ``asgi``

        yield run
