"""OpenVINO over the archive's own ONNX towers, and the load-time proof that decides whether bf16 is served.

Ships next to inference.py in code/; ``openvino`` is imported only when this engine loads. OpenVINO reads the
same ``text.onnx`` and ``image.onnx`` as ONNX Runtime (no second archive format) and, with
``INFERENCE_PRECISION_HINT`` bf16, runs them on the CPU's bf16 units (AMX, AVX-512 bf16). bf16 changes the
vectors, so before it serves, :func:`towers_for` embeds a fixed probe (golden texts and awkward images) in
fp32 and bf16 and keeps bf16 only if every cosine reaches ``CLIP_BF16_MIN_COSINE``. The choice is made once at
load and never changes for the life of the process: every request is served at the precision /health reports.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

if __package__:  # see inference.py: a package in the repository, top-level modules under the toolkit
    from . import clip_cpu as _cpu
    from . import clip_onnx as _onnx
    from .clip_env import ConfigError
else:
    import clip_cpu as _cpu
    import clip_onnx as _onnx
    from clip_env import ConfigError

_logger = logging.getLogger("omnisearch_embed.model")
_HINTS = {"fp32": "f32", "bf16": "bf16"}

# A subset of omnisearch_testkit.golden_texts.GOLDEN (code/ ships alone, so it is copied; a test keeps it a
# subset): plain, empty, entities, mojibake, emoji, CJK, right-to-left, combining marks, 77 tokens and over.
PROBE_TEXTS = [
    "a photo of a cat",
    "",
    "Tom &amp; Jerry",
    "cafÃ© au lait",
    "I ❤️ NY 🗽🍎",
    "一只猫坐在桌子上",
    "مرحبا بالعالم، قطة على الطاولة",
    "école vs e\u0301cole",
    "a photo of " * 40,
    "star " * 76,
    "supercalifragilisticexpialidocious" * 20,
    "3.14159 is pi!!! 1,000,000 $$$ ??? (555) 123-4567",
    "don't I'm you're we've they'll she'd it's",
    "<start_of_text> hello <end_of_text>",
]


def probe_images() -> list[Image.Image]:
    """Shapes as tiny-shapes draws them, noise off the square, strips, near-black, 16-bit grey and flat white."""
    rng = np.random.default_rng(29)
    images = []
    for size, back, colour, shape in (
        ((96, 96), "white", (220, 30, 30), "circle"),
        ((120, 80), (128, 128, 128), (30, 60, 220), "square"),
        ((64, 64), "black", (40, 200, 60), "triangle"),
    ):
        img = Image.new("RGB", size, back)
        draw, (w, h) = ImageDraw.Draw(img), size
        box = (w * 0.2, h * 0.2, w * 0.8, h * 0.8)
        if shape == "circle":
            draw.ellipse(box, fill=colour)
        elif shape == "square":
            draw.rectangle(box, fill=colour)
        else:
            draw.polygon([(w / 2, h * 0.15), (w * 0.85, h * 0.85), (w * 0.15, h * 0.85)], fill=colour)
        images.append(img)
    images.append(Image.fromarray(rng.integers(0, 255, (240, 394, 3), dtype=np.uint8)))  # crop offset 71.5
    images.append(Image.fromarray(np.tile(np.linspace(0, 255, 300, dtype=np.uint8), (40, 1))).convert("RGB"))
    images.append(Image.fromarray(rng.integers(0, 255, (300, 1, 3), dtype=np.uint8)))  # 1 x 300
    images.append(Image.fromarray(rng.integers(0, 9, (224, 224, 3), dtype=np.uint8)))  # near black
    grey16 = Image.fromarray(rng.integers(0, 65535, (90, 70), dtype=np.uint16))  # clipped to sparse dark specks
    images.append(grey16.convert("RGB"))  # as clip_inputs decodes a 16-bit PNG
    images.append(Image.new("RGB", (50, 50), "white"))
    return images


class OpenVinoError(RuntimeError):
    """OpenVINO cannot compile an exported graph (not an OnnxModelError: the file itself may be fine)."""


class OpenVinoTowers(_onnx.OnnxTowers):
    """Both towers compiled by OpenVINO for the CPU at ``precision`` (fp32 or bf16): arrays in, float32 out.

    The sha256 checks and the load-time probe are OnnxTowers'. A compiled model runs one inference at a time
    per request object, so each call takes one from a small pool (concurrent calls get their own).
    """

    engine = "openvino"

    def __init__(self, directory: str | Path, precision: str) -> None:
        import openvino as ov

        self.precision = precision
        self._ov, self._core = ov, ov.Core()
        self._requests: dict[str, queue.SimpleQueue[Any]] = {}
        super().__init__(directory)

    def _load(self, name: str) -> Any:
        path = self.directory / name
        config = {
            "INFERENCE_PRECISION_HINT": _HINTS[self.precision],
            "INFERENCE_NUM_THREADS": _onnx.threads(),
            "PERFORMANCE_HINT": "LATENCY",
        }
        try:
            compiled = self._core.compile_model(str(path), "CPU", config)
        except Exception as e:  # OpenVINO raises RuntimeError subclasses of its own for graphs it cannot take
            raise OpenVinoError(f"OpenVINO cannot compile {path} ({self.precision}): {e}") from e
        self._requests[name] = queue.SimpleQueue()
        return compiled

    @property
    def runs_in(self) -> str:
        """The precision OpenVINO actually chose (it quietly runs f32 where the CPU has no bf16 at all)."""
        hint = self.sessions[_onnx.IMAGE_FILE].get_property("INFERENCE_PRECISION_HINT")
        return "bf16" if hint == self._ov.Type.bf16 else "fp32" if hint == self._ov.Type.f32 else str(hint)

    def _run(self, name: str, array: np.ndarray) -> np.ndarray:
        requests = self._requests[name]
        try:
            request = requests.get_nowait()
        except queue.Empty:
            request = self.sessions[name].create_infer_request()
        try:
            return request.infer({0: array})[0]  # copied out of the request's buffers
        finally:
            requests.put(request)


@dataclass(frozen=True)
class Choice:
    """What a CPU model serves with, and why: decided once at load, reported by /health."""

    engine: str
    precision: str
    reason: str
    min_cosine: float | None = None  # bf16 against fp32 on the probe, where it was measured
    cpu_flags: tuple[str, ...] = field(default_factory=lambda: tuple(_cpu.bf16_flags()))  # as read at load

    def report(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "precision": self.precision,
            "precision_reason": self.reason,
            "bf16_min_cosine": None if self.min_cosine is None else round(self.min_cosine, 6),
            "cpu_flags": list(self.cpu_flags),
        }


def _fp32_reason(engine: str) -> str:
    wanted = _cpu.precision_setting()
    if wanted == "fp32":
        return "CLIP_PRECISION=fp32"
    if _onnx.engine_setting() == "onnxruntime":
        return "CLIP_ENGINE=onnxruntime serves fp32 only"
    if _cpu.native_bf16() is None:
        return "this CPU has neither amx_bf16 nor avx512_bf16: bf16 would be emulated"
    if engine == "onnxruntime":
        return "openvino is not installed: bf16 runs on OpenVINO"
    return "fp32"


def features(towers: _onnx.OnnxTowers, tokens: np.ndarray, pixels: np.ndarray) -> list[np.ndarray]:
    """The probe's text and image features, as float64 unit rows."""
    out = []
    for rows in (towers.encode_text(tokens), towers.encode_image(pixels)):
        rows = rows.astype(np.float64)
        out.append(rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12))
    return out


def min_cos(expected: list[np.ndarray], found: list[np.ndarray]) -> float:
    """The smallest cosine between matching rows of two :func:`features` results."""
    return min(float((a * b).sum(axis=1).min()) for a, b in zip(expected, found, strict=True))


def towers_for(
    directory: Path,
    engine: str,
    precision: str,
    probe: Callable[[_onnx.OnnxTowers], tuple[np.ndarray, np.ndarray]],
) -> tuple[_onnx.OnnxTowers, Choice]:
    """The towers to serve and why: ``engine`` and ``precision`` as clip_onnx.engine_for and clip_cpu.for_cpu left them.

    ``probe(towers)`` gives the probe's token rows and pixels. The fp32 reference is ONNX Runtime (OpenVINO's
    fp32 under ``CLIP_ENGINE=openvino``); it runs the probe and is released before bf16 loads, so the start
    holds one engine at a time (OpenVINO keeps about twice the graphs' size), and it loads again only where it
    serves after all: bf16 failed the check, or (under auto) OpenVINO could not compile a graph.
    """
    if engine != "openvino":
        return _onnx.OnnxTowers(directory), Choice("onnxruntime", "fp32", _fp32_reason(engine))
    if precision == "fp32":
        return OpenVinoTowers(directory, "fp32"), Choice("openvino", "fp32", _fp32_reason(engine))
    bar = _cpu.min_cosine()  # a bad setting stops the start before anything loads
    openvino_asked = _onnx.engine_setting() == "openvino"

    def fp32() -> _onnx.OnnxTowers:
        return OpenVinoTowers(directory, "fp32") if openvino_asked else _onnx.OnnxTowers(directory)

    reference = fp32()
    fallback = reference.engine
    tokens, pixels = probe(reference)
    expected = features(reference, tokens, pixels)
    del reference
    _onnx._return_freed_memory()
    try:
        candidate = OpenVinoTowers(directory, "bf16")
    except OpenVinoError as e:
        if openvino_asked or precision == "bf16":
            raise
        _logger.warning("%s: serving fp32 on ONNX Runtime", e)
        return fp32(), Choice("onnxruntime", "fp32", f"{e}: ONNX Runtime serves fp32")
    if candidate.runs_in != "bf16":  # OpenVINO's own view of the CPU overrules the flags
        why = f"OpenVINO runs bf16 graphs as {candidate.runs_in} on this CPU"
        if precision == "bf16":
            raise ConfigError(f"CLIP_PRECISION=bf16: {why}")
        del candidate
        _logger.warning("%s: serving fp32 on %s", why, fallback)
        return fp32(), Choice(fallback, "fp32", why)
    lowest = min_cos(expected, features(candidate, tokens, pixels))
    measured = f"min cos {lowest:.6f} against fp32 over {len(tokens)} golden texts and {len(pixels)} probe images"
    if lowest >= bar or precision == "bf16":
        if lowest < bar:
            _logger.warning("CLIP_PRECISION=bf16 serves below the fidelity bar: %s < %s", measured, bar)
        return candidate, Choice("openvino", "bf16", f"{_cpu.native_bf16()} bf16, {measured} (bar {bar})", lowest)
    del candidate
    _onnx._return_freed_memory()
    why = f"bf16 failed the fidelity check at load ({measured} < {bar})"
    _logger.warning("%s: serving fp32 on %s", why, fallback)
    return fp32(), Choice(fallback, "fp32", why, lowest)
