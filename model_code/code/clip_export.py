"""Exporting both towers from open_clip to ONNX, with what serving needs beside them: the torch side of clip_onnx.

Ships next to inference.py in code/. :func:`export` writes ``text.onnx``, ``image.onnx``, ``tokenizer.json``
(the BPE of clip_tokens.py, where the model's tokenizer is open_clip's SimpleTokenizer) and ``clip_onnx.json``:
dimension, context length, ``logit_scale``, the image preprocessing, the text trimming rule and the tokenizer,
plus each file's sha256. With them clip_onnx.py and clip_ort.py serve the model without torch. The text graph
takes tokens already trimmed to the batch's last EOT (clip_text.trim_length), with a dynamic sequence axis, so
it keeps the trimming torch does; both graphs have a dynamic batch axis.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from open_clip.transformer import ResidualAttentionBlock

if __package__:  # see inference.py: a package in the repository, top-level modules under the toolkit
    from . import clip_text as _text
    from .clip_onnx import IMAGE_FILE, META, OPSET, TEXT_FILE, OnnxModelError
else:
    import clip_text as _text
    from clip_onnx import IMAGE_FILE, META, OPSET, TEXT_FILE, OnnxModelError


class _TextTower(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model
        self.found = _text.trimmable(model)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.found is None:
            return self.model.encode_text(tokens)
        return _text.trimmed_features(*self.found, tokens)


class _ImageTower(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(pixels)


def _attention(
    block: ResidualAttentionBlock, q_x: torch.Tensor, k_x: Any = None, v_x: Any = None, attn_mask: Any = None
):
    """nn.MultiheadAttention's self-attention with the sequence axis left symbolic.

    Traced, torch's own attention bakes the example's sequence length into a reshape; here every reshape
    names the sequence axis -1, so one text graph serves every trimmed length.
    """
    attn = block.attn
    x = q_x if attn.batch_first else q_x.transpose(0, 1)
    batch, width, heads = x.shape[0], attn.embed_dim, attn.num_heads
    q, k, v = F.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
    q, k, v = (t.reshape(batch, -1, heads, width // heads).transpose(1, 2) for t in (q, k, v))
    mask = attn_mask.to(q.dtype) if attn_mask is not None else None
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2).reshape(batch, -1, width)
    out = attn.out_proj(out)
    return out if attn.batch_first else out.transpose(0, 1)


@contextlib.contextmanager
def _traceable(module: torch.nn.Module):
    """Self-attention blocks of ``module`` switched to :func:`_attention` while it is traced.

    That also keeps torch's fused inference kernel (``_native_multi_head_attention``, which ONNX cannot
    express) out of the trace.
    """
    blocks = [
        b
        for b in module.modules()
        if isinstance(b, ResidualAttentionBlock)
        and isinstance(b.attn, torch.nn.MultiheadAttention)
        and b.attn._qkv_same_embed_dim
    ]
    for block in blocks:
        block.attention = lambda *a, _b=block, **k: _attention(_b, *a, **k)
    try:
        yield
    finally:
        for block in blocks:
            del block.attention


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _to_onnx(module: torch.nn.Module, example: torch.Tensor, name: str, axes: dict[int, str]) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the tracer's notes on shapes read as Python numbers: the axes are declared
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                module,
                (example,),
                buffer,
                opset_version=OPSET,
                dynamo=False,
                input_names=[name],
                output_names=["features"],
                dynamic_axes={name: axes, "features": {0: "batch"}},
            )
        except Exception as e:  # an operator ONNX cannot express, a graph over protobuf's 2 GB, ...
            raise OnnxModelError(f"cannot export the {name} tower to ONNX: {e}") from e
    return buffer.getvalue()


def export(clip: Any, directory: str | Path) -> dict[str, Any]:
    """Write both towers of a torch-loaded ClipModel (fp32, on the CPU) and their metadata into ``directory``."""
    model = clip.model
    if clip.device.type != "cpu" or clip.dtype != torch.float32:
        raise ValueError("export an fp32 model loaded on the CPU")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    text = _TextTower(model).eval()
    tokens, _, _ = _text.tokenize(clip, ["a photo of a red circle", "star"])
    if text.found is not None:
        tokens = tokens[:, : _text.trim_length(tokens, *text.found[1:])]
    size = model.visual.preprocess_cfg["size"]
    height, width = (size, size) if isinstance(size, int) else size
    pixels = torch.zeros(2, 3, height, width)
    with _traceable(model):
        files = {
            TEXT_FILE: _to_onnx(text, tokens, "tokens", {0: "batch", 1: "sequence"} if text.found else {0: "batch"}),
            IMAGE_FILE: _to_onnx(_ImageTower(model).eval(), pixels, "pixels", {0: "batch"}),
        }
    for name, data in files.items():
        (directory / name).write_bytes(data)
    tokens_meta = None
    text_tokens = _text.text_tokens(clip)
    if text_tokens is not None:  # a tokenizer that clip_tokens.py reproduces: serving needs no open_clip
        files[text_tokens.describe()["file"]] = text_tokens.save(directory)
        tokens_meta = text_tokens.describe()
    meta = {
        "opset": OPSET,
        "dimension": clip.dimension,
        "context_length": clip.context_length,
        "logit_scale": clip.logit_scale,
        "preprocess": dict(model.visual.preprocess_cfg),
        "trim": {"pool": text.found[1], "eos": text.found[2]} if text.found else None,
        "tokenizer": tokens_meta,
        "sha256": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
    }
    (directory / META).write_text(json.dumps(meta, indent=2))
    return meta
