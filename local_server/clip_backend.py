"""LocalClipBackend: the Backend protocol served by model_code/code/inference.py, in process.

It runs the container's own functions (``load_model`` / ``predict_fn``, and for :meth:`invoke` the whole
``input_fn -> predict_fn -> output_fn`` path), so the local server and a SageMaker endpoint give the same
vectors for the same input and model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from model_code.tiny_shapes import CHECKPOINT_PATH, CONFIG_PATH, load_inference
from omnisearch_embed.backends.wire import locate_item
from omnisearch_embed.embeddings import SERVICE_LOCAL, Embeddings
from omnisearch_embed.errors import (
    EmbedError,
    InvalidInputError,
    ModelError,
    PayloadTooLargeError,
    UnprocessableError,
    UnsupportedMediaTypeError,
)
from omnisearch_embed.settings import TINY_SHAPES_MODEL_ID, model_id_for

T = TypeVar("T")

# inference.InputError.code -> the API's error class (everything else is a 400 invalid_input)
_INPUT_ERRORS: dict[str, type[EmbedError]] = {
    "invalid_image": UnprocessableError,
    "image_too_many_pixels": PayloadTooLargeError,
    "unsupported_media_type": UnsupportedMediaTypeError,
}


class LocalClipBackend:
    """An open_clip model in this process. ``pretrained``: a tag, a checkpoint path, or "" for random weights.

    For ``tiny-shapes`` "" means the bundled checkpoint (model_code/tiny_shapes/tiny-shapes.pt).
    """

    service = SERVICE_LOCAL

    def __init__(self, model_name: str = TINY_SHAPES_MODEL_ID, pretrained: str = "", device: str | None = None) -> None:
        self._inference = load_inference()
        config = None
        weights = pretrained
        if model_name == TINY_SHAPES_MODEL_ID:
            config = CONFIG_PATH
            weights = pretrained or str(CHECKPOINT_PATH)  # load_model logs that this is a demo model
        self.model_id = model_id_for(model_name, pretrained)
        # Every torch call runs on this one thread, the model's own: concurrent calls would only fight over
        # the cores, and on the CPU a model loaded and run on one thread is 10-30 ms faster per call than one
        # called from ever-changing server threads (each calling thread gets its own OpenMP team).
        self._model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clip-model")
        try:
            self._clip = self._on_model_thread(
                self._inference.load_model,
                model_name,
                weights,
                device=device,
                config_path=config,
                model_id=self.model_id,
            )
        except RuntimeError as e:  # open_clip: unknown model, unknown tag, weights that cannot be fetched
            raise ValueError(f"cannot load CLIP model {model_name!r} with pretrained {pretrained!r}: {e}") from e

    def _on_model_thread(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return self._model_thread.submit(fn, *args, **kwargs).result()

    @property
    def dimension(self) -> int:
        return int(self._clip.dimension)

    def _predict(self, kind: str, items: list[Any], normalize: bool) -> Embeddings:
        request = self._inference.Request(kind, items, normalize)
        try:
            prediction = self._on_model_thread(self._inference.predict_fn, request, self._clip)
        except self._inference.InputError as e:
            raise locate_item(_INPUT_ERRORS.get(e.code, InvalidInputError)(str(e), code=e.code)) from e
        except RuntimeError as e:  # torch failed (e.g. out of memory): the model's fault, not the caller's
            raise ModelError(f"the local model failed: {e}") from e
        return Embeddings(
            vectors=prediction.vectors.tolist(),
            model=prediction.model_id,
            service=SERVICE_LOCAL,
            dimension=self.dimension,
            truncated=prediction.truncated,
            tokens=prediction.tokens,
            logit_scale=prediction.logit_scale,
        )

    def embed_texts(self, texts: Sequence[str], *, normalize: bool = True) -> Embeddings:
        if not texts:
            return Embeddings([], self.model_id, SERVICE_LOCAL, self.dimension, truncated=[], tokens=[])
        return self._predict("texts", list(texts), normalize)

    def embed_images(self, images: Sequence[bytes], *, normalize: bool = True) -> Embeddings:
        if not images:
            return Embeddings([], self.model_id, SERVICE_LOCAL, self.dimension)
        return self._predict("images", [bytes(i) for i in images], normalize)

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        """The container's whole path for one invocation: ``(response body, content type)``.

        Bad input raises inference.InputError (a ValueError with ``status_code`` 400 and a ``message``), as
        the container would answer; anything else is a container failure.
        """
        data = self._inference.input_fn(body, content_type)
        prediction = self._on_model_thread(self._inference.predict_fn, data, self._clip)
        return self._inference.output_fn(prediction, accept)

    def container(self) -> tuple[Any, Any]:
        """inference.py and its loaded model, for the serving container mounted in process (endpoint_server)."""
        return self._inference, self._clip

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "service": SERVICE_LOCAL,
            "model": self.model_id,
            "dimension": self.dimension,
            "device": str(self._clip.device),
        }
