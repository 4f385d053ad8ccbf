"""The archive's inference.py, loaded as the toolkit loads it, and the batch call over its functions.

model.tar.gz unpacks to the model directory (``/opt/ml/model``): ``code/inference.py`` and its siblings
beside the weights. Its ``model_fn``, ``input_fn``, ``predict_fn`` and ``output_fn`` do the work; this
module only merges compatible decoded requests into one ``predict_fn`` call and splits the prediction back,
so each request keeps its own ``encoding`` and ``Accept``.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from endpoint_server.merging import call_merged
from model_code import archive_code

if TYPE_CHECKING:  # the types of whichever copy of the model code serves; imported for real at load
    from model_code.code.inference import ClipModel, Prediction, Request

_logger = logging.getLogger(__name__)


def load_inference(model_dir: str | Path) -> ModuleType:
    """``<model_dir>/code/inference.py`` with its siblings (model_code.archive_code), else the bundled model code."""
    code = Path(model_dir) / "code"
    if not (code / "inference.py").is_file():
        _logger.info("no code/inference.py in %s: using the bundled model_code.code", model_dir)
        return importlib.import_module("model_code.code.inference")
    return archive_code(code)


@dataclasses.dataclass(eq=False)
class Invocation:
    """One decoded, validated request waiting for its batch."""

    data: Request  # or inference.Records (a Batch Transform request)
    size: int


class ModelRunner:
    """inference.py's functions over one loaded model; :meth:`predict` is the batcher's ``list -> list`` call."""

    def __init__(self, inference: ModuleType, model: ClipModel) -> None:
        self.inference = inference
        self.model = model
        self._check_image = getattr(inference, "check_image", None)

    @property
    def pool(self) -> Any:
        """The model's decode threads, when inference.py has them (images are checked there before batching)."""
        return getattr(self.model, "pool", None) if self._check_image is not None else None

    def check_image(self, index: int, data: bytes) -> Any:
        return self._check_image(index, data, self.model) if self._check_image else data

    def batch_key(self, invocation: Invocation) -> tuple[Any, ...]:
        """Only requests of the same kind and normalisation share a predict_fn call.

        Batch Transform records (inference.py's ``Records``: a raw image body or JSON lines) carry an id and an
        error slot per record, which one merged request could not keep apart: each is a batch of its own.
        """
        data = invocation.data
        if isinstance(data, self.inference.Records):
            return "records", id(invocation)
        return data.kind, bool(data.normalize)

    def decode(self, body: bytes, content_type: str) -> Any:
        return self.inference.input_fn(body, content_type)

    def predict(self, batch: list[Invocation]) -> list[Prediction]:
        """One predict_fn call for the whole batch; one Prediction per invocation, in order, with its encoding."""
        first = batch[0].data
        return call_merged(
            [invocation.data.items for invocation in batch],
            lambda items: self.inference.predict_fn(dataclasses.replace(first, items=items), self.model),
            changes=lambda _merged, i: {"encoding": batch[i].data.encoding},
        )

    def encode(self, prediction: Any, accept: str) -> tuple[bytes, str]:
        return self.inference.output_fn(prediction, accept)
