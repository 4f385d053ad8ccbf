"""The torch-free CPU engine: an archive's ONNX towers on ONNX Runtime or OpenVINO, preprocessing in Pillow and numpy.

Ships next to inference.py in code/. Everything :class:`OrtClip` needs is in the archive (clip_export.py):
the two graphs, ``tokenizer.json`` and ``clip_onnx.json``. Loading reads them, checks their sha256s and runs
each tower once; no torch model is built and neither torch nor open_clip is imported, so a CPU door starts in
the time ONNX Runtime takes to load the graphs. Tokens come from clip_tokens.py (SimpleTokenizer's ids),
pixels from clip_pixels.py (open_clip's eval transform), and clip_embed.py drives it as it drives the torch
engine. Which runtime and precision serve is decided once here (clip_openvino.towers_for): bf16 on OpenVINO
where the CPU has it natively and the vectors pass the load-time proof, else fp32.
"""

from __future__ import annotations

import importlib.util
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

if __package__:  # see inference.py: a package in the repository, top-level modules under the toolkit
    from . import clip_archive as _archive
    from . import clip_cpu as _cpu
    from . import clip_inputs as _inputs
    from . import clip_onnx as _onnx
    from . import clip_openvino as _openvino
    from . import clip_pixels as _pixels
else:
    import clip_archive as _archive
    import clip_cpu as _cpu
    import clip_inputs as _inputs
    import clip_onnx as _onnx
    import clip_openvino as _openvino
    import clip_pixels as _pixels

logger = logging.getLogger("omnisearch_embed.model")


@dataclass
class OrtClip:
    """What ``model_fn`` returns on the CPU: the towers (ONNX Runtime or OpenVINO), tokenizer and pixel pipeline."""

    onnx: _onnx.OnnxTowers
    tokenize: Any  # texts -> (int64 ids, counts, truncated): clip_tokens.TextTokens
    pil_stage: _pixels.Preprocess
    model_id: str
    dimension: int
    context_length: int
    pool: ThreadPoolExecutor
    logit_scale: float
    jpeg_draft_size: int | None = None
    choice: _openvino.Choice | None = None  # the engine and precision chosen at load, and why

    device = "cpu"
    model = None  # no torch model is built

    @property
    def engine(self) -> str:
        return self.onnx.engine

    @property
    def precision(self) -> str:
        return self.onnx.precision

    def describe(self) -> dict[str, Any]:
        """Engine, precision, why, the measured bf16 cosine and the CPU's bf16 flags, as /health reports them."""
        choice = self.choice or _openvino.Choice(self.engine, self.precision, "")
        return choice.report()

    def text_features(self, tokens: np.ndarray) -> np.ndarray:
        return self.onnx.encode_text(tokens)

    def image_plan(self, items: list[Any]) -> _inputs.Plan:
        return _inputs.Plan(items, self)

    def image_features(self, plan: _inputs.Plan, start: int, stop: int) -> np.ndarray:
        return self.onnx.encode_image(self.pil_stage.normalize([r.pixels for r in plan.ready(start, stop)]))

    def check_image(self, index: int, data: Any) -> _inputs.Decoded:
        return _inputs.decoded(index, data, self)


def _fallback_tokens(directory: Path, model_name: str, config_path: Path | None, context_length: int) -> Any:
    """open_clip's tokenizer for an export without ``tokenizer.json``; refused where torch is not installed."""
    if importlib.util.find_spec("open_clip") is None:
        raise _onnx.OnnxModelError(
            f"{directory} has no {_onnx.META} tokenizer entry (an export from an older version) and this image has "
            "no open_clip to tokenize with: package the model again with package_model.py"
        )
    if __package__:
        from .clip_torch import open_clip_tokens
    else:
        from clip_torch import open_clip_tokens
    return open_clip_tokens(model_name, config_path, context_length)


def load_onnx(directory: str | Path, model_name: str, *, config_path: Path | None = None, model_id: str) -> OrtClip:
    """The exported files in ``directory`` on the CPU, at the engine and precision chosen now; never torch.

    ``CLIP_ENGINE`` and ``CLIP_PRECISION`` are checked before anything loads (a bad or non-native choice is a
    ConfigError); a torch engine asked for here serves ONNX Runtime, as the caller asked for the files.
    """
    directory = Path(directory)
    engine = _onnx.engine_for("cpu", True, where=str(directory))
    engine = "onnxruntime" if engine == "torch" else engine
    precision = _cpu.for_cpu(engine)
    tokenizers: list[Any] = []  # built once, from the first towers loaded (their files checked first)

    def tokenizer(towers: _onnx.OnnxTowers) -> Any:
        if not tokenizers:
            context = int(towers.meta["context_length"])
            tokenizers.append(towers.tokenizer() or _fallback_tokens(directory, model_name, config_path, context))
        return tokenizers[0]

    def probe(towers: _onnx.OnnxTowers) -> tuple[np.ndarray, np.ndarray]:
        """The load-time proof's inputs (clip_openvino's golden texts and images) as token rows and pixels."""
        stage = _pixels.Preprocess(towers.meta["preprocess"])
        pixels = stage.normalize([stage(img) for img in _openvino.probe_images()])
        return np.asarray(tokenizer(towers)(_openvino.PROBE_TEXTS)[0]), pixels

    towers, choice = _openvino.towers_for(directory, engine, precision, probe)
    meta = towers.meta
    clip = OrtClip(
        onnx=towers,
        tokenize=tokenizer(towers),
        pil_stage=_pixels.Preprocess(meta["preprocess"]),
        model_id=model_id,
        dimension=towers.dimension,
        context_length=int(meta["context_length"]),
        pool=_inputs.decode_pool(),
        logit_scale=float(meta["logit_scale"]),
        jpeg_draft_size=_inputs.draft_size(meta["preprocess"]["size"]),
        choice=choice,
    )
    _archive.announce(model_name)
    logger.info(
        "loaded %s with %s %s on the CPU (%s), dimension %d: %s",
        model_id,
        choice.engine,
        choice.precision,
        directory,
        clip.dimension,
        choice.reason,
    )
    return clip
