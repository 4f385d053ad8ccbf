"""LocalClipBackend: the Backend protocol served by model_code/code/inference.py, in process.

It runs the container's own functions (``load_model`` or ``load_onnx`` / ``predict_fn``, and for
:meth:`invoke` the whole ``input_fn -> predict_fn -> output_fn`` path), so the local server and a SageMaker
endpoint give the same vectors for the same input and model. The engine is the container's rule
(``CLIP_ENGINE``, clip_onnx.engine_for): on the CPU, ONNX Runtime over towers exported once into a cache
(onnx_cache.py), else torch.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from local_server import onnx_cache
from model_code.code import clip_onnx, inference
from model_code.tiny_shapes import CHECKPOINT_PATH, CONFIG_PATH
from omnisearch_embed.backends.wire import locate_item
from omnisearch_embed.embeddings import SERVICE_LOCAL, Embeddings
from omnisearch_embed.errors import ModelError, caller_error
from omnisearch_embed.settings import TINY_SHAPES_MODEL_ID, model_id_for

T = TypeVar("T")
_logger = logging.getLogger(__name__)


class LocalClipBackend:
    """An open_clip model in this process. ``pretrained``: a tag, a checkpoint path, or "" for random weights.

    For ``tiny-shapes`` "" means the bundled checkpoint (model_code/tiny_shapes/tiny-shapes.pt).
    """

    service = SERVICE_LOCAL

    def __init__(self, model_name: str = TINY_SHAPES_MODEL_ID, pretrained: str = "", device: str | None = None) -> None:
        self._inference = inference
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
            self._clip = self._on_model_thread(self._load, model_name, weights, device, config)
        except RuntimeError as e:  # open_clip: unknown model, unknown tag, weights that cannot be fetched
            raise ValueError(f"cannot load CLIP model {model_name!r} with pretrained {pretrained!r}: {e}") from e

    def _load(self, model_name: str, weights: str, device: str | None, config: Any) -> Any:
        def load_torch(**kwargs: Any) -> Any:
            return inference.load_model(model_name, weights, config_path=config, model_id=self.model_id, **kwargs)

        if clip_onnx.engine_for(device, has_onnx=True) == "torch":
            return load_torch(device=device)
        key = onnx_cache.cache_key(model_name, weights, config)
        try:
            directory = onnx_cache.exported(key, lambda: load_torch(device="cpu", precision="fp32"))
            return inference.load_onnx(directory, model_name, config_path=config, model_id=self.model_id)
        except clip_onnx.OnnxModelError as e:
            if os.environ.get("CLIP_ENGINE", "").strip().lower() == "onnxruntime":
                raise
            _logger.warning("ONNX Runtime cannot serve %s (%s): serving with torch", model_name, e)
            return load_torch(device=device)

    def _on_model_thread(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """torch's calls on the model's own thread; ONNX Runtime's in the caller's (its pool is its own)."""
        if self._clip_is_torch():
            return self._model_thread.submit(fn, *args, **kwargs).result()
        return fn(*args, **kwargs)

    def _clip_is_torch(self) -> bool:
        clip = getattr(self, "_clip", None)
        return clip is None or clip.engine == "torch"

    @property
    def dimension(self) -> int:
        return int(self._clip.dimension)

    def _predict(self, kind: str, items: list[Any], normalize: bool) -> Embeddings:
        request = self._inference.Request(kind, items, normalize)
        try:
            prediction = self._on_model_thread(self._inference.predict_fn, request, self._clip)
        except self._inference.InputError as e:
            raise locate_item(caller_error(e.status_code, str(e), e.code)) from e
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

        Bad input raises inference.InputError (a ValueError with its ``status_code`` and a ``message``), as
        the container would answer; anything else is a container failure.
        """
        data = self._inference.input_fn(body, content_type)
        prediction = self._on_model_thread(self._inference.predict_fn, data, self._clip)
        return self._inference.output_fn(prediction, accept)

    def container(self) -> tuple[Any, Any]:
        """inference.py and its loaded model, for the serving container mounted in process (endpoint_server)."""
        return self._inference, self._clip

    def health(self) -> dict[str, Any]:
        """Status, and what serves: engine, precision, why, bf16's measured cosine and the CPU's bf16 flags.

        The CPU engines decide precision once at load (clip_openvino.towers_for), so this is what every request
        is served with; the torch engine reports its dtype.
        """
        report = {
            "status": "ok",
            "service": SERVICE_LOCAL,
            "model": self.model_id,
            "dimension": self.dimension,
            "device": str(self._clip.device),
            "engine": self._clip.engine,
        }
        describe = getattr(self._clip, "describe", None)
        if describe is not None:
            report.update(describe())
        else:
            dtype = str(getattr(self._clip, "dtype", "")).removeprefix("torch.")
            report["precision"] = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}.get(dtype, dtype)
        return report
