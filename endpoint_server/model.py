"""The archive's inference.py, loaded as the toolkit loads it, and the batch call over its functions.

model.tar.gz unpacks to the model directory (``/opt/ml/model``): ``code/inference.py`` and its siblings
beside the weights. Its ``model_fn``, ``input_fn``, ``predict_fn`` and ``output_fn`` do the work; this
module only merges compatible decoded requests into one ``predict_fn`` call and splits the prediction back,
so each request keeps its own ``encoding`` and ``Accept``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
from pathlib import Path
from types import ModuleType
from typing import Any

from model_code import load_module

_logger = logging.getLogger(__name__)


def bundled_code_dir() -> Path:
    """model_code/code from the repository, for a model directory that ships weights but no code/."""
    spec = importlib.util.find_spec("model_code")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the model directory has no code/inference.py and model_code is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "code"


def load_inference(model_dir: str | Path) -> ModuleType:
    """``<model_dir>/code/inference.py`` (else the bundled one) as a module of its own, siblings alongside."""
    code = Path(model_dir) / "code"
    if not (code / "inference.py").is_file():
        code = bundled_code_dir()
        _logger.info("no code/inference.py in %s: using %s", model_dir, code)
    return load_module(code / "inference.py", f"endpoint_inference_{abs(hash(str(code.resolve())))}")


@dataclasses.dataclass(eq=False)
class Invocation:
    """One decoded, validated request waiting for its batch."""

    data: Any  # inference.Request
    size: int


def batch_key(invocation: Invocation) -> tuple[Any, ...]:
    """Only requests of the same kind and normalisation share a predict_fn call.

    Batch Transform records (inference.py's ``Records``: a raw image body or JSON lines) carry an id and an
    error slot per record, which one merged request could not keep apart: each is a batch of its own.
    """
    data = invocation.data
    if type(data).__name__ == "Records":
        return "records", id(invocation)
    return data.kind, bool(data.normalize)


class ModelRunner:
    """inference.py's functions over one loaded model; :meth:`predict` is the batcher's ``list -> list`` call."""

    def __init__(self, inference: ModuleType, model: Any) -> None:
        self.inference = inference
        self.model = model
        self._check_image = getattr(inference, "check_image", None)

    @property
    def pool(self) -> Any:
        """The model's decode threads, when inference.py has them (images are checked there before batching)."""
        return getattr(self.model, "pool", None) if self._check_image is not None else None

    def check_image(self, index: int, data: bytes) -> Any:
        return self._check_image(index, data, self.model) if self._check_image else data

    def decode(self, body: bytes, content_type: str) -> Any:
        return self.inference.input_fn(body, content_type)

    def predict(self, batch: list[Invocation]) -> list[Any]:
        """One predict_fn call for the whole batch; one Prediction per invocation, in order, with its encoding."""
        first = batch[0].data
        items = [item for invocation in batch for item in invocation.data.items]
        merged = self.inference.predict_fn(dataclasses.replace(first, items=items), self.model)
        if len(merged.vectors) != len(items):
            raise RuntimeError(f"predict_fn returned {len(merged.vectors)} vectors for {len(items)} items")
        out, start = [], 0
        for invocation in batch:
            stop = start + len(invocation.data.items)
            out.append(
                dataclasses.replace(
                    merged,
                    vectors=merged.vectors[start:stop],
                    truncated=None if merged.truncated is None else merged.truncated[start:stop],
                    tokens=None if merged.tokens is None else merged.tokens[start:stop],
                    encoding=invocation.data.encoding,
                )
            )
            start = stop
        return out

    def encode(self, prediction: Any, accept: str) -> tuple[bytes, str]:
        return self.inference.output_fn(prediction, accept)
