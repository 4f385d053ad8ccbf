"""The CPU engine: both towers exported from open_clip to ONNX, served by ONNX Runtime.

Ships next to inference.py in code/. At batch 1 on the CPU, ONNX Runtime runs a CLIP tower in about half of
torch eager's time (fused attention and layer norms, no Python between operators), and single requests are
what the CPU paths mostly serve. :func:`export` writes ``text.onnx``, ``image.onnx`` and ``clip_onnx.json``
(what serving needs without building the torch model: dimension, context length, ``logit_scale``, the image
preprocessing and the text trimming rule, plus each file's sha256). The text graph takes tokens already
trimmed to the batch's last EOT (clip_text.trim_length), with a dynamic sequence axis, so it keeps the
trimming torch does; both graphs have a dynamic batch axis. :class:`OnnxTowers` loads them and fails at once,
naming the file, when one is missing, corrupt or not the one the metadata describes.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from open_clip.transformer import ResidualAttentionBlock

if __package__:  # see inference.py: a package in the repository, top-level modules under the toolkit
    from . import clip_text as _text
    from .clip_env import env_choice, env_int
else:
    import clip_text as _text
    from clip_env import env_choice, env_int

META = "clip_onnx.json"
TEXT_FILE, IMAGE_FILE = "text.onnx", "image.onnx"
OPSET = 17
ENGINES = ("auto", "torch", "onnxruntime")
_logger = logging.getLogger("omnisearch_embed.model")


class OnnxModelError(RuntimeError):
    """An ONNX file that cannot serve: missing, unreadable, or not the model its metadata describes."""


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
    meta = {
        "opset": OPSET,
        "dimension": clip.dimension,
        "context_length": clip.context_length,
        "logit_scale": clip.logit_scale,
        "preprocess": dict(model.visual.preprocess_cfg),
        "trim": {"pool": text.found[1], "eos": text.found[2]} if text.found else None,
        "sha256": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
    }
    (directory / META).write_text(json.dumps(meta, indent=2))
    return meta


def engine_for(device: str | None, has_onnx: bool, *, where: str = "") -> str:
    """``CLIP_ENGINE`` (auto | torch | onnxruntime) resolved: auto is ONNX Runtime on the CPU when the files exist."""
    wanted = env_choice(os.environ, "CLIP_ENGINE", "auto", ENGINES)
    on_cpu = (device or ("cuda" if torch.cuda.is_available() else "cpu")) == "cpu"
    if wanted == "onnxruntime" and not has_onnx:
        raise ValueError(f"CLIP_ENGINE=onnxruntime, but {where or 'the model'} has no {META}")
    if wanted == "auto":
        wanted = "onnxruntime" if on_cpu and has_onnx else "torch"
        if on_cpu and not has_onnx and where:
            _logger.warning("no ONNX files (%s) in %s: serving with torch", META, where)
    return wanted


def present(directory: str | Path) -> bool:
    return (Path(directory) / META).is_file()


def threads() -> int:
    """ONNX Runtime's intra-op threads: ``CLIP_ONNX_THREADS``, else as many as torch uses here."""
    return env_int(os.environ, "CLIP_ONNX_THREADS", torch.get_num_threads())


class OnnxTowers:
    """Both towers as ONNX Runtime sessions on the CPU, each run once at load (:meth:`check`), not at a request."""

    def __init__(self, directory: str | Path) -> None:
        import onnxruntime as ort

        self.directory = Path(directory)
        self.meta: dict[str, Any] = json.loads((self.directory / META).read_text())
        trim = self.meta.get("trim")
        self.trim = (trim["pool"], trim["eos"]) if trim else None
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads()
        options.inter_op_num_threads = 1
        if os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE":  # as torch's threads are told to wait
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.sessions = {}
        for name in (TEXT_FILE, IMAGE_FILE):
            path = self.directory / name
            if not path.is_file():
                raise OnnxModelError(f"{path} is missing ({META} is there)")
            if _sha256(path) != self.meta["sha256"][name]:
                raise OnnxModelError(f"{path} is not the file {META} describes (sha256 differs): export it again")
            try:
                self.sessions[name] = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            except Exception as e:  # onnxruntime raises its own classes for unreadable or invalid graphs
                raise OnnxModelError(f"cannot load {path}: {e}") from e
        self.check()

    @property
    def dimension(self) -> int:
        return int(self.meta["dimension"])

    def _run(self, name: str, array: np.ndarray) -> torch.Tensor:
        session = self.sessions[name]
        return torch.from_numpy(session.run(None, {session.get_inputs()[0].name: array})[0])

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.trim is not None:
            tokens = tokens[:, : _text.trim_length(tokens, *self.trim)]
        return self._run(TEXT_FILE, np.ascontiguousarray(tokens.numpy(), dtype=np.int64))

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        return self._run(IMAGE_FILE, np.ascontiguousarray(pixels.numpy(), dtype=np.float32))

    def check(self) -> None:
        """One probe through each tower: a graph of the wrong shape or model is refused at load, naming its file."""
        size = self.meta["preprocess"]["size"]
        height, width = (size, size) if isinstance(size, int) else size
        tokens = torch.zeros(1, int(self.meta["context_length"]), dtype=torch.int64)
        tokens[0, :2] = torch.tensor([1, 2])
        probes = {
            TEXT_FILE: lambda: self.encode_text(tokens),
            IMAGE_FILE: lambda: self.encode_image(torch.zeros(1, 3, height, width)),
        }
        for name, probe in probes.items():
            try:
                shape = tuple(probe().shape)
            except Exception as e:  # a wrong input name, type or rank fails inside onnxruntime
                raise OnnxModelError(f"{self.directory / name} cannot run: {e}") from e
            if shape != (1, self.dimension):
                raise OnnxModelError(f"{self.directory / name} gives {shape} features, not (1, {self.dimension})")
