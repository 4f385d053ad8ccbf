"""SageMaker PyTorch inference handlers serving an open_clip model (model.tar.gz's code/, no repository imports).

Ships with its siblings clip_inputs.py (request parsing, image decoding), clip_images.py (image batches, GPU
JPEG decoding), clip_text.py (tokens, trimmed text tower), clip_embed.py (the batched forward passes),
clip_records.py (Batch Transform records), clip_onnx.py (the ONNX Runtime engine on the CPU),
clip_activation.py (QuickGELU for a weights file), clip_env.py (the settings reader) and clip_archive.py
(what an unpacked archive holds). In the repository they are the package ``model_code.code``; in the archive
the toolkit puts code/ on sys.path and imports them as top-level modules: each imports its siblings either way.
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
import io
import json
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import open_clip
import torch
from open_clip.transform import PreprocessCfg, image_transform_v2
from PIL import Image

if __package__:  # model_code.code in the repository, or an archive's code/ loaded as a package
    from . import clip_activation as _activation  # QuickGELU or GELU for a weights file
    from . import clip_archive as _archive  # what an unpacked model.tar.gz holds
    from . import clip_embed as _embed  # the forward passes
    from . import clip_env as _env  # the one reader of settings (the core's omnisearch_embed.env)
    from . import clip_images as _images
    from . import clip_inputs as _inputs
    from . import clip_onnx as _onnx  # the CPU engine
    from . import clip_records as _records  # Batch Transform's JSON lines
    from . import clip_text as _text
else:  # code/ on sys.path, as the SageMaker toolkit runs inference.py: the siblings are top-level modules
    import clip_activation as _activation
    import clip_archive as _archive
    import clip_embed as _embed
    import clip_env as _env
    import clip_images as _images
    import clip_inputs as _inputs
    import clip_onnx as _onnx
    import clip_records as _records
    import clip_text as _text

# The names callers and tests use, whichever sibling defines them.
InputError, Request, decode_image, Records = _inputs.InputError, _inputs.Request, _inputs.decode_image, _records.Records
Prediction = _embed.Prediction  # what predict_fn returns
STATUS_BY_CODE = _inputs.STATUS_BY_CODE  # each InputError code's HTTP status
tokenize, encode_text, trimmable = _text.tokenize, _text.encode_text, _text.trimmable
check_image = _images.check  # a serving container validates (and on the CPU decodes) images before batching

logger = logging.getLogger("omnisearch_embed.model")

TINY_SHAPES, MANIFEST, model_id_for = _archive.TINY_SHAPES, _archive.MANIFEST, _archive.model_id_for
JSON_TYPE, NPY_TYPE = "application/json", "application/x-npy"
ConfigError = _env.ConfigError  # a setting below it cannot use, naming the variable
DECODE_THREADS = _env.env_int(os.environ, "CLIP_DECODE_THREADS", min(8, os.cpu_count() or 1))
_PRECISION_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass
class ClipModel:
    """What ``model_fn`` returns; ``model`` is open_clip's, or None where ``onnx`` (clip_onnx.OnnxTowers) runs."""

    model: torch.nn.Module | None
    preprocess: Callable[[Image.Image], torch.Tensor]
    tokenizer: Callable[..., torch.Tensor]
    model_id: str
    device: torch.device
    dtype: torch.dtype
    dimension: int
    context_length: int
    pool: ThreadPoolExecutor
    logit_scale: float
    pil_stage: Callable[[Image.Image], Image.Image] | None = None  # preprocess up to ToTensor, run in threads
    mean: torch.Tensor | None = None  # Normalize's, as [1, 3, 1, 1] float32 on the device
    std: torch.Tensor | None = None
    jpeg_draft_size: int | None = None  # see clip_inputs.decode_image and draft_size
    onnx: Any = None

    engine = property(lambda self: "torch" if self.onnx is None else "onnxruntime")


def load_model(
    model_name: str,
    pretrained: str = "",
    *,
    device: str | None = None,
    precision: str | None = None,
    config_path: str | Path | None = None,
    model_id: str | None = None,
    quick_gelu: bool | None = None,
) -> ClipModel:
    """Build through open_clip's factory; ``pretrained`` is a tag, a checkpoint path or "" (random)."""
    if config_path is not None:
        open_clip.add_model_config(config_path)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if not precision:
        default = "fp16" if dev.type == "cuda" else "fp32"
        precision = _env.env_choice(os.environ, "CLIP_PRECISION", default, tuple(_PRECISION_DTYPES))
    if precision not in _PRECISION_DTYPES:
        raise ValueError(f"precision {precision!r} is not one of {sorted(_PRECISION_DTYPES)}")
    quick_gelu = _activation.quick_gelu_for(model_name, pretrained, quick_gelu)  # refuses a file it cannot tell
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # random weights are the same in every process
        model, _, preprocess = open_clip.create_model_and_transforms(
            model_name,
            pretrained=pretrained or None,
            device=dev,
            precision=precision,
            force_quick_gelu=bool(quick_gelu),
        )
    model.eval()
    tokenizer = open_clip.get_tokenizer(model_name)
    with torch.inference_mode():
        probe = model.encode_text(tokenizer(["probe"]).to(dev))
        logit_scale = float(model.logit_scale.exp())  # in inference mode: a plain number, no autograd warning
    clip = ClipModel(
        model=model,
        preprocess=preprocess,
        tokenizer=tokenizer,
        model_id=model_id or model_id_for(model_name, pretrained),
        device=dev,
        dtype=_PRECISION_DTYPES[precision],
        dimension=int(probe.shape[-1]),
        context_length=int(getattr(tokenizer, "context_length", None) or model.context_length),
        pool=ThreadPoolExecutor(max_workers=max(1, DECODE_THREADS), thread_name_prefix="clip-decode"),
        logit_scale=logit_scale,
    )
    _ready(clip, model_name, getattr(model.visual, "image_size", None))
    logger.info("loaded %s on %s (%s), dimension %d", clip.model_id, dev, precision, clip.dimension)
    return clip


def _ready(clip: ClipModel, model_name: str, image_size: int | tuple[int, int] | list[int] | None) -> None:
    """What both engines share once the model is loaded: split preprocessing, the tokenizer built, JPEG drafts."""
    _inputs.split_preprocess(clip)
    tokenize(clip, ["probe"])  # builds the fast tokenizer now rather than on the first request
    clip.jpeg_draft_size = _inputs.draft_size(image_size)
    if model_name == TINY_SHAPES:
        logger.warning(
            "serving tiny-shapes, a demo model that knows only coloured shapes: it is not a general-purpose CLIP "
            "(set CLIP_MODEL and CLIP_PRETRAINED to serve a real one)"
        )


def load_onnx(directory: str | Path, model_name: str, *, config_path: Path | None = None, model_id: str) -> ClipModel:
    """ONNX Runtime on the CPU over clip_onnx's files in ``directory``; the torch model is never built."""
    if config_path is not None:
        open_clip.add_model_config(config_path)  # the tokenizer reads the model's text config
    towers = _onnx.OnnxTowers(directory)
    meta = towers.meta
    tokenizer = open_clip.get_tokenizer(model_name)
    clip = ClipModel(
        model=None,
        preprocess=image_transform_v2(PreprocessCfg(**meta["preprocess"]), is_train=False),
        tokenizer=tokenizer,
        model_id=model_id,
        device=torch.device("cpu"),
        dtype=torch.float32,
        dimension=towers.dimension,
        context_length=int(meta["context_length"]),
        pool=ThreadPoolExecutor(max_workers=max(1, DECODE_THREADS), thread_name_prefix="clip-decode"),
        logit_scale=float(meta["logit_scale"]),
        onnx=towers,
    )
    _ready(clip, model_name, meta["preprocess"]["size"])
    logger.info("loaded %s with ONNX Runtime on the CPU (%s), dimension %d", model_id, directory, clip.dimension)
    return clip


def model_fn(model_dir: str) -> ClipModel:
    """Load from the archive (manifest, or an open_clip config JSON + weights), else CLIP_MODEL/CLIP_PRETRAINED.

    On the CPU an archive with its ONNX towers is served by ONNX Runtime (clip_onnx.engine_for, ``CLIP_ENGINE``).
    """
    root = Path(model_dir)
    found = _archive.read(root)
    if found is None:
        model = _env.env_str(os.environ, "CLIP_MODEL") or "ViT-B-32"
        return load_model(model, _env.env_str(os.environ, "CLIP_PRETRAINED", "openai"))
    if _onnx.engine_for(None, _onnx.present(root), where=str(root)) == "onnxruntime":
        return load_onnx(root, found.model, config_path=found.config, model_id=found.model_id)
    return load_model(
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


def predict_fn(data: Request, clip: ClipModel) -> Prediction:
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
