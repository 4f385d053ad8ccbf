"""SageMaker PyTorch inference handlers serving an open_clip model (model.tar.gz's code/, no repository imports).

Ships with its siblings clip_inputs.py (request parsing, image decoding), clip_images.py (image batches, GPU
JPEG decoding) and clip_text.py (tokens, trimmed text tower).
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
import importlib.util
import io
import json
import logging
import os
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from PIL import Image


def _sibling(name: str) -> ModuleType:
    """A module shipped next to this file in code/, loaded under a name private to this copy of inference.py.

    The toolkit puts code/ on sys.path, but the repository loads inference.py by path, sometimes twice (its
    own and one extracted from an archive): private names keep each copy with its own siblings.
    """
    qualified = f"{__name__}__{name}"
    if qualified not in sys.modules:
        spec = importlib.util.spec_from_file_location(qualified, Path(__file__).with_name(f"{name}.py"))
        if spec is None or spec.loader is None:
            raise ImportError(f"{name}.py is missing next to {__file__}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[qualified] = module  # dataclasses look their module up while it executes
        spec.loader.exec_module(module)
    return sys.modules[qualified]


_inputs = _sibling("clip_inputs")
_text = _sibling("clip_text")
_images = _sibling("clip_images")
_records = _sibling("clip_records")  # Batch Transform's JSON lines
# The names callers and tests use, whichever sibling defines them.
InputError, Request, decode_image = _inputs.InputError, _inputs.Request, _inputs.decode_image
tokenize, encode_text, trimmable = _text.tokenize, _text.encode_text, _text.trimmable
check_image = _images.check  # a serving container validates (and on the CPU decodes) images before batching

logger = logging.getLogger("omnisearch_embed.model")

TINY_SHAPES = "tiny-shapes"
MANIFEST = "clip_model.json"  # written by scripts/package_model.py; optional
WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")
JSON_TYPE, NPY_TYPE = "application/json", "application/x-npy"
TEXT_BATCH = int(os.environ.get("CLIP_TEXT_BATCH_SIZE", "256"))
IMAGE_BATCH = int(os.environ.get("CLIP_IMAGE_BATCH_SIZE", "64"))
# Large JPEGs are decoded at reduced scale down to this multiple of the model's input size (0: never).
# At 2x the resize still downsamples from real pixels: vectors move by rounding only (tests pin >= 0.999).
JPEG_DRAFT_SCALE = float(os.environ.get("CLIP_JPEG_DRAFT_SCALE", "2"))
DECODE_THREADS = int(os.environ.get("CLIP_DECODE_THREADS", str(min(8, os.cpu_count() or 1))))
_PRECISION_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass
class ClipModel:
    """What ``model_fn`` returns: the model and everything needed to feed it."""

    model: torch.nn.Module
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
    jpeg_draft_size: int | None = None  # see clip_inputs.decode_image and JPEG_DRAFT_SCALE


@dataclass
class Prediction:
    """What ``predict_fn`` returns: a float32 count x dimension matrix and per-text token facts."""

    model_id: str
    vectors: np.ndarray
    truncated: list[bool] | None = None
    tokens: list[int] | None = None
    encoding: str = "float"
    logit_scale: float | None = None


def model_id_for(model: str, pretrained: str) -> str:
    """The id that travels with every answer; same rule as omnisearch_embed.settings.model_id_for."""
    if model == TINY_SHAPES:
        return model
    if not pretrained:
        return f"{model}/random"
    return f"{model}/{os.path.basename(pretrained.rstrip('/')) if '/' in pretrained else pretrained}"


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
    precision = precision or os.environ.get("CLIP_PRECISION") or ("fp16" if dev.type == "cuda" else "fp32")
    if precision not in _PRECISION_DTYPES:
        raise ValueError(f"precision {precision!r} is not one of {sorted(_PRECISION_DTYPES)}")
    if quick_gelu is None and pretrained and not os.path.isfile(pretrained):
        quick_gelu = bool(open_clip.get_pretrained_cfg(model_name, pretrained).get("quick_gelu"))
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
    _inputs.split_preprocess(clip)
    tokenize(clip, ["probe"])  # builds the fast tokenizer now rather than on the first request
    size = getattr(model.visual, "image_size", None)
    size = max(size) if isinstance(size, (tuple, list)) else size
    if size and JPEG_DRAFT_SCALE > 0:
        clip.jpeg_draft_size = int(size * JPEG_DRAFT_SCALE)
    if model_name == TINY_SHAPES:
        logger.warning(
            "serving tiny-shapes, a demo model that knows only coloured shapes: it is not a general-purpose CLIP "
            "(set CLIP_MODEL and CLIP_PRETRAINED to serve a real one)"
        )
    logger.info("loaded %s on %s (%s), dimension %d", clip.model_id, dev, precision, clip.dimension)
    return clip


def _find_weights(model_dir: Path) -> Path | None:
    found = sorted(p for p in model_dir.iterdir() if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    return found[0] if found else None


def _find_config(model_dir: Path) -> Path | None:
    for path in sorted(model_dir.glob("*.json")):
        try:
            cfg = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(cfg, dict) and {"embed_dim", "vision_cfg", "text_cfg"} <= cfg.keys():
            return path
    return None


def model_fn(model_dir: str) -> ClipModel:
    """Load from the archive (manifest, or an open_clip config JSON + weights), else CLIP_MODEL/CLIP_PRETRAINED."""
    root = Path(model_dir)
    if (root / MANIFEST).is_file():
        m = json.loads((root / MANIFEST).read_text())
        config = root / m["config"] if m.get("config") else None
        weights = str(root / m["weights"]) if m.get("weights") else m.get("pretrained", "")
        return load_model(
            m["model"], weights, config_path=config, model_id=m.get("model_id"), quick_gelu=m.get("quick_gelu")
        )
    config = _find_config(root) if root.is_dir() else None
    if config is not None:
        weights = _find_weights(root)
        return load_model(config.stem, str(weights) if weights else "", config_path=config)
    model = os.environ.get("CLIP_MODEL", "").strip() or "ViT-B-32"
    return load_model(model, os.environ.get("CLIP_PRETRAINED", "openai").strip())


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


def _finish(features: torch.Tensor, normalize: bool) -> np.ndarray:
    features = features.float()
    if normalize:
        features = F.normalize(features, dim=-1)
    return features.cpu().numpy()


def predict_fn(data: Request, clip: ClipModel) -> Prediction:
    """Embed in bounded batches; texts are sorted by length so each batch trims as far as it can."""
    if isinstance(data, _records.Records):
        return _records.predict(data, clip, predict_fn, Request, InputError)
    out = np.empty((len(data.items), clip.dimension), dtype=np.float32)
    with torch.inference_mode():
        if data.kind == "texts":
            tokens, counts, truncated = tokenize(clip, data.items)
            order = sorted(range(len(counts)), key=counts.__getitem__)
            for start in range(0, len(order), TEXT_BATCH):
                idx = order[start : start + TEXT_BATCH]
                out[idx] = _finish(encode_text(clip.model, tokens[idx].to(clip.device)), data.normalize)
            return Prediction(clip.model_id, out, truncated, counts, data.encoding, logit_scale=clip.logit_scale)
        # Decoding runs ahead in the pool (or on the GPU, per chunk) while the model works on the previous chunk.
        plan = _images.Plan(data.items, clip)
        try:
            for start in range(0, len(data.items), IMAGE_BATCH):
                pixels = plan.pixels(start, start + IMAGE_BATCH)
                out[start : start + len(pixels)] = _finish(clip.model.encode_image(pixels), data.normalize)
        finally:
            plan.cancel()
    return Prediction(clip.model_id, out, encoding=data.encoding, logit_scale=clip.logit_scale)


def output_fn(prediction: Prediction, accept: str | None) -> tuple[bytes, str]:
    """(body, content type): the JSON wire format, or a .npy float32 matrix for ``application/x-npy``."""
    if isinstance(prediction, _records.RecordsPrediction):
        if _records.wants_lines(accept):
            return _records.render(prediction), _records.JSONLINES_TYPE
        prediction = _records.as_prediction(prediction, Prediction, InputError)
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
