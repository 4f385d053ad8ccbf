"""SageMaker PyTorch inference handlers serving an open_clip model (model.tar.gz's code/, no repository imports).

Ships with its siblings. Without torch: clip_inputs.py (request parsing, image decoding), clip_embed.py (the
batched forward passes, either engine), clip_records.py (Batch Transform records), clip_onnx.py and
clip_ort.py (the ONNX Runtime engine on the CPU), clip_openvino.py and clip_cpu.py (OpenVINO, bf16 where the
CPU has it natively, proved at load), clip_tokens.py and clip_pixels.py (its tokens and pixels),
clip_env.py (the settings reader) and clip_archive.py (what an unpacked archive holds). With torch, imported
only when a model needs it (CUDA, no ONNX files, exporting): clip_torch.py (open_clip's model),
clip_images.py (image batches, GPU JPEG decoding), clip_text.py (tokens, trimmed text tower),
clip_export.py (the ONNX export) and clip_activation.py (QuickGELU for a weights file). In the repository
they are the package ``model_code.code``; in the archive the toolkit puts code/ on sys.path and imports them
as top-level modules: each imports its siblings either way.
The toolkit calls ``model_fn`` once, then ``input_fn -> predict_fn -> output_fn`` per request. The local
server runs these same functions in process, so both paths give the same vectors for the same input.
Wire protocol (the caller's side is omnisearch_embed/backends/wire.py): ``{"texts": [...]}`` or
``{"images": [b64, ...]}`` with optional ``normalize`` and ``encoding``; answers JSON ``{model, dimension,
embeddings, truncated, tokens}`` or, for ``Accept: application/x-npy``, the bare float32 matrix.

``tokens`` counts the token positions the text tower reads for a text: start and end tokens included,
at most the context length (77 for CLIP); ``truncated`` says the text had more and was cut to fit.
"""

from __future__ import annotations

import base64
import importlib
import importlib.util
import io
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

if __package__:  # model_code.code in the repository, or an archive's code/ loaded as a package
    from . import clip_archive as _archive  # what an unpacked model.tar.gz holds
    from . import clip_embed as _embed  # the forward passes
    from . import clip_env as _env  # the one reader of settings (the core's omnisearch_embed.env)
    from . import clip_inputs as _inputs
    from . import clip_onnx as _onnx  # the CPU engine's files
    from . import clip_ort as _ort  # the CPU engine, without torch
    from . import clip_records as _records  # Batch Transform's JSON lines
else:  # code/ on sys.path, as the SageMaker toolkit runs inference.py: the siblings are top-level modules
    import clip_archive as _archive
    import clip_embed as _embed
    import clip_env as _env
    import clip_inputs as _inputs
    import clip_onnx as _onnx
    import clip_ort as _ort
    import clip_records as _records

# The names callers and tests use, whichever sibling defines them.
InputError, Request, decode_image, Records = _inputs.InputError, _inputs.Request, _inputs.decode_image, _records.Records
Prediction = _embed.Prediction  # what predict_fn returns
STATUS_BY_CODE = _inputs.STATUS_BY_CODE  # each InputError code's HTTP status
load_onnx, OrtClip = _ort.load_onnx, _ort.OrtClip

logger = logging.getLogger("omnisearch_embed.model")

TINY_SHAPES, MANIFEST, model_id_for = _archive.TINY_SHAPES, _archive.MANIFEST, _archive.model_id_for
JSON_TYPE, NPY_TYPE = "application/json", "application/x-npy"
ConfigError = _env.ConfigError  # a setting below it cannot use, naming the variable
DECODE_THREADS = _inputs.DECODE_THREADS

# The torch engine's names, imported on first use (module __getattr__): a CPU door serving ONNX towers never
# imports torch or open_clip. Each name is (sibling module, attribute).
_TORCH_NAMES = {
    "load_model": ("clip_torch", "load_model"),
    "ClipModel": ("clip_torch", "ClipModel"),
    "tokenize": ("clip_text", "tokenize"),
    "encode_text": ("clip_text", "encode_text"),
    "trimmable": ("clip_text", "trimmable"),
    "open_clip": ("clip_torch", "open_clip"),
    "torch": ("clip_torch", "torch"),
    "_images": ("clip_images", None),
    "_text": ("clip_text", None),
}


def __getattr__(name: str) -> Any:
    if name not in _TORCH_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module_name, attribute = _TORCH_NAMES[name]
    module = importlib.import_module(f"{__package__}.{module_name}" if __package__ else module_name)
    return module if attribute is None else getattr(module, attribute)


def check_image(index: int, data: Any, clip: Any) -> Any:
    """A serving container validates (and on the CPU decodes) an image before it joins a batch."""
    return clip.check_image(index, data)


def _torch_missing(root: Path) -> None:
    if importlib.util.find_spec("torch") is None:
        raise ConfigError(
            f"{root} has no ONNX towers ({_onnx.META}) and this image has no torch to build the model with: "
            "package the model with package_model.py without --no-onnx, which writes them into the archive"
        )


def model_fn(model_dir: str) -> Any:
    """Load from the archive (manifest, or an open_clip config JSON + weights), else CLIP_MODEL/CLIP_PRETRAINED.

    On the CPU an archive with its ONNX towers is served without importing torch, by ONNX Runtime or by
    OpenVINO in bf16 where the CPU has it natively and the vectors pass the load-time check (clip_onnx.engine_for,
    ``CLIP_ENGINE``, ``CLIP_PRECISION``; clip_openvino.py); otherwise open_clip builds the model (clip_torch.py).
    """
    root = Path(model_dir)
    found = _archive.read(root)
    if found is None:
        _torch_missing(root)
        model = _env.env_str(os.environ, "CLIP_MODEL") or "ViT-B-32"
        return __getattr__("load_model")(model, _env.env_str(os.environ, "CLIP_PRETRAINED", "openai"))
    if not _onnx.present(root):
        _torch_missing(root)  # before engine_for, which would announce serving with a torch this image lacks
    if _onnx.engine_for(None, _onnx.present(root), where=str(root)) != "torch":
        return load_onnx(root, found.model, config_path=found.config, model_id=found.model_id)
    _torch_missing(root)
    return __getattr__("load_model")(
        found.model, found.weights, config_path=found.config, model_id=found.model_id, quick_gelu=found.quick_gelu
    )


def input_fn(body: bytes | str | dict[str, Any], content_type: str) -> Request:
    """JSON protocol, or one raw image (``image/*``, ``application/x-image``), or one ``text/plain`` text.

    A raw image and ``application/jsonlines`` (Batch Transform) are records: with ``Accept:
    application/jsonlines`` each is answered on its own line, a bad one with its error (clip_records.py).
    """
    media = _inputs.media_type(content_type)
    if media == JSON_TYPE:
        return _inputs.parse_json(body)
    if media in _records.JSONLINES_TYPES:
        return _records.parse_lines(body)
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    if media == "application/x-image" or media.startswith("image/"):
        if not raw:
            raise InputError("empty image body", "empty_image")
        return _records.image_record(raw)
    if media == "text/plain":
        return Request("texts", [raw.decode("utf-8", errors="replace")])
    raise InputError(
        f"unsupported content type {content_type!r}; use application/json or image/*", "unsupported_media_type"
    )


def predict_fn(data: Request, clip: Any) -> Prediction:
    """Embed in bounded batches (clip_embed.py); Batch Transform's records one by one (clip_records.py)."""
    if isinstance(data, _records.Records):
        return _records.predict(data, clip)
    return _embed.embed(data, clip)


def output_fn(prediction: Prediction, accept: str | None) -> tuple[bytes, str]:
    """(body, content type): the JSON wire format, or a .npy float32 matrix for ``application/x-npy``."""
    if isinstance(prediction, _records.RecordsPrediction):
        if _records.wants_lines(accept):
            return _records.render(prediction), _records.JSONLINES_TYPE
        prediction = _records.as_prediction(prediction)
    media = {_inputs.media_type(a) for a in (accept or JSON_TYPE).split(",")}
    if NPY_TYPE in media:
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(prediction.vectors, dtype=np.float32), allow_pickle=False)
        return buf.getvalue(), NPY_TYPE
    if not media & {JSON_TYPE, "*/*", "application/*", ""}:
        raise InputError(f"unsupported Accept {accept!r}; use application/json or application/x-npy", "not_acceptable")
    vectors = prediction.vectors.astype("<f4", copy=False)
    embeddings: Any
    if prediction.encoding == "base64":
        embeddings = base64.b64encode(np.ascontiguousarray(vectors).tobytes()).decode("ascii")
    else:
        embeddings = vectors.tolist()
    body = {
        "model": prediction.model_id,
        "dimension": int(vectors.shape[1]),
        "embeddings": embeddings,
        "truncated": prediction.truncated,
        "tokens": prediction.tokens,
        "logit_scale": prediction.logit_scale,
    }
    return json.dumps(body, separators=(",", ":")).encode("utf-8"), JSON_TYPE
