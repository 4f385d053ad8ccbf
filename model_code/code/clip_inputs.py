"""Request bytes to model inputs: the JSON protocol's parsing, and image decoding and preprocessing.

Ships next to inference.py in code/. Bad input raises :class:`InputError`, whose message says what is wrong.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import json
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageOps

try:  # inside the SageMaker container: the toolkit answers with the error's status instead of a 500
    from sagemaker_inference.errors import BaseInferenceToolkitError as _ToolkitError
except ImportError:  # pragma: no cover - only the container has the toolkit

    class _ToolkitError(Exception):  # type: ignore[no-redef]
        def __init__(self, status_code: int, message: str, phrase: str) -> None:
            self.status_code, self.message, self.phrase = status_code, message, phrase


if __package__:  # see inference.py: a package in the repository, top-level modules under the toolkit
    from .clip_env import env_float, env_int
else:
    from clip_env import env_float, env_int

DECODE_THREADS = env_int(os.environ, "CLIP_DECODE_THREADS", min(8, os.cpu_count() or 1))
MAX_IMAGE_PIXELS = env_int(os.environ, "CLIP_MAX_IMAGE_PIXELS", 40_000_000)
# Large JPEGs are decoded at reduced scale down to this multiple of the model's input size (0: never).
# At 2x the resize still downsamples from real pixels: vectors move by rounding only (tests pin >= 0.999).
JPEG_DRAFT_SCALE = env_float(os.environ, "CLIP_JPEG_DRAFT_SCALE", 2.0, minimum=0.0)


# The HTTP status of each InputError code, the one table every door reads: the toolkit and the serving
# container answer with it, the local backend and the SageMaker backend turn it into the API's error class.
# A code not listed is a 400.
STATUS_BY_CODE = {
    "invalid_image": 422,  # well-formed request, unusable picture (the API's 422, as corrupt_image)
    "image_too_many_pixels": 413,
    "unsupported_media_type": 415,
    "not_acceptable": 406,
}


class InputError(ValueError, _ToolkitError):
    """Bad request content; the message says what is wrong, ``status_code`` comes from :data:`STATUS_BY_CODE`.

    ``code`` is a stable snake_case name that travels with the status to the API's error.
    """

    def __init__(self, message: str, code: str = "invalid_input") -> None:
        # The toolkit's error body is ``.message``, a newline and the traceback: a JSON first line carries the
        # code to the caller's side (wire.error_detail), as the serving container's JSON body does.
        toolkit_body = json.dumps({"code": code, "message": message})
        _ToolkitError.__init__(self, STATUS_BY_CODE.get(code, 400), toolkit_body, message)
        self.args = (message,)
        self.code = code

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass
class Request:
    """What ``input_fn`` returns: ``kind`` is ``texts`` or ``images`` (raw image file bytes)."""

    kind: str
    items: list[Any]
    normalize: bool = True
    encoding: str = "float"


def media_type(value: str | None) -> str:
    return (value or "").split(";")[0].strip().lower()


def decode_b64(index: int, value: Any) -> bytes:
    if not isinstance(value, str) or not value:
        raise InputError(f"images[{index}] must be a non-empty base64 string")
    if value.startswith("data:") and "," in value:
        value = value.split(",", 1)[1]
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError) as e:
        raise InputError(f"images[{index}] is not valid base64: {e}", "invalid_base64") from e


def parse_json(body: bytes | str | dict[str, Any]) -> Request:
    try:  # TorchServe hands over parsed JSON unless decode_input_request is false: accept both
        doc = body if isinstance(body, dict | list) else json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(f"body is not valid JSON: {e}", "invalid_json") from e
    if not isinstance(doc, dict):
        raise InputError('body must be a JSON object with "texts" or "images"')
    unknown = sorted(set(doc) - {"texts", "images", "normalize", "encoding"})
    if unknown:
        raise InputError(f"unknown field(s) {', '.join(unknown)}; expected texts or images, normalize, encoding")
    if ("texts" in doc) == ("images" in doc):
        raise InputError('body must have exactly one of "texts" or "images"')
    normalize, encoding = doc.get("normalize", True), doc.get("encoding", "float")
    if not isinstance(normalize, bool):
        raise InputError('"normalize" must be true or false')
    if encoding not in ("float", "base64"):
        raise InputError('"encoding" must be "float" or "base64"')
    kind = "texts" if "texts" in doc else "images"
    items = doc[kind]
    if not isinstance(items, list) or not items:
        raise InputError(f'"{kind}" must be a non-empty list')
    if kind == "texts":
        for i, text in enumerate(items):
            if not isinstance(text, str):
                raise InputError(f"texts[{i}] must be a string, not {type(text).__name__}")
    else:
        items = [decode_b64(i, v) for i, v in enumerate(items)]
    return Request(kind, items, normalize, encoding)


@contextlib.contextmanager
def opened(index: int, data: bytes) -> Iterator[Image.Image]:
    """The image file opened (header read, pixel count checked, not decoded); InputError if unusable."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise InputError(
                    f"images[{index}] has {img.width}x{img.height} pixels, over {MAX_IMAGE_PIXELS}",
                    "image_too_many_pixels",
                )
            yield img
    except InputError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise InputError(f"images[{index}] is not a readable image ({len(data)} bytes): {e}", "invalid_image") from e


def draft_size(image_size: int | tuple[int, int] | list[int] | None) -> int | None:
    """The ``draft_size`` for :func:`decode_image` with a model whose input is ``image_size``."""
    size = max(image_size) if isinstance(image_size, (tuple, list)) else image_size
    return int(size * JPEG_DRAFT_SCALE) if size and JPEG_DRAFT_SCALE > 0 else None


def decode_image(index: int, data: bytes, draft_size: int | None = None) -> Image.Image:
    """Decode one image file (first frame, EXIF orientation, RGB); InputError (a ValueError) if unusable.

    ``draft_size``: let libjpeg decode a large JPEG at 1/2, 1/4 or 1/8 scale, never below that size on
    either side. Preprocessing shrinks the image to about that size anyway; the DCT-domain downscale
    halves decode-and-resize time and moves pixels by about 0.5/255 on average.
    """
    with opened(index, data) as img:
        if draft_size and img.format == "JPEG":
            img.draft("RGB", (draft_size, draft_size))
        img.seek(0)
        return ImageOps.exif_transpose(img).convert("RGB")


def prepare(index: int, data: bytes, clip: Any) -> Any:
    """In a decode thread: HWC uint8 pixels ready for the batch, or (torch, a pipeline it cannot split) a tensor."""
    rgb = decode_image(index, data, clip.jpeg_draft_size)
    if clip.pil_stage is None:
        return clip.preprocess(rgb)
    return np.asarray(clip.pil_stage(rgb), dtype=np.uint8)


@dataclass(frozen=True)
class Decoded:
    """An image decoded on the CPU ahead of its batch: what :func:`prepare` returned."""

    pixels: Any


def decoded(index: int, data: Any, clip: Any) -> Decoded:
    """In a decode thread: the image checked and prepared, or InputError (already-checked items pass through)."""
    return data if isinstance(data, Decoded) else Decoded(prepare(index, data, clip))


class Plan:
    """The images of one predict_fn call: checks start at once in the pool, results are taken chunk by chunk.

    ``check`` turns one item into what the engine batches (:func:`decoded` on the CPU); the engine turns a
    chunk of results into its model input.
    """

    def __init__(self, items: list[Any], clip: Any, check: Callable[[int, Any, Any], Any] = decoded) -> None:
        self.clip = clip
        if len(items) == 1:  # nothing to overlap: checked on this thread, without a hop to the pool and back
            self.futures: list[Future[Any]] = [Future()]
            try:
                self.futures[0].set_result(check(0, items[0], clip))
            except Exception as e:  # raised where the result is taken, as from the pool
                self.futures[0].set_exception(e)
            return
        self.futures = [clip.pool.submit(check, i, b, clip) for i, b in enumerate(items)]

    def cancel(self) -> None:
        for future in self.futures:
            future.cancel()

    def ready(self, start: int, stop: int) -> list[Any]:
        """Items ``start:stop`` once checked; the first bad one raises its InputError."""
        return [f.result() for f in self.futures[start:stop]]


def decode_pool() -> ThreadPoolExecutor:
    """The threads a loaded model decodes and preprocesses images in (``CLIP_DECODE_THREADS``)."""
    return ThreadPoolExecutor(max_workers=max(1, DECODE_THREADS), thread_name_prefix="clip-decode")
