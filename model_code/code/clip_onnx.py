"""The CPU engine's files: both towers as ONNX graphs, served by ONNX Runtime, without torch.

Ships next to inference.py in code/. At batch 1 on the CPU, ONNX Runtime runs a CLIP tower in about half of
torch eager's time (fused attention and layer norms, no Python between operators), and single requests are
what the CPU paths mostly serve. clip_export.py writes ``text.onnx``, ``image.onnx``, ``tokenizer.json`` and
``clip_onnx.json`` (what serving needs without building the torch model: dimension, context length,
``logit_scale``, the image preprocessing, the text trimming rule and the tokenizer, plus each file's
sha256). :class:`OnnxTowers` loads them and fails at once, naming the file, when one is missing, corrupt or
not the one the metadata describes. Nothing here imports torch: an archive with these files serves on a
CPU image that has none (clip_ort.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import importlib.util
import json
import logging
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

if __package__:  # see inference.py: a package in the repository, top-level modules under the toolkit
    from . import clip_cpu as _cpu
    from . import clip_tokens as _tokens
    from .clip_env import ConfigError, env_choice, env_int
else:
    import clip_cpu as _cpu
    import clip_tokens as _tokens
    from clip_env import ConfigError, env_choice, env_int

META = "clip_onnx.json"
TEXT_FILE, IMAGE_FILE = "text.onnx", "image.onnx"
OPSET = 17
ENGINES = ("auto", "torch", "onnxruntime", "openvino")
_logger = logging.getLogger("omnisearch_embed.model")


class OnnxModelError(RuntimeError):
    """An ONNX file that cannot serve: missing, unreadable, or not the model its metadata describes."""


def cuda_available() -> bool:
    """Whether torch would run on CUDA here, without importing torch where it cannot.

    No torch installed, or no NVIDIA device node, is the CPU: a CPU door never pays for importing torch to
    learn that. Only where both exist does torch answer (it is then imported, as the GPU path needs it).
    """
    if sys.modules.get("torch") is None:  # not imported yet (or blocked)
        if importlib.util.find_spec("torch") is None:
            return False
        if not any(Path("/dev").glob("nvidia[0-9]*")) and not os.environ.get("CLIP_ASSUME_CUDA"):
            return False
    import torch

    return bool(torch.cuda.is_available())


def engine_setting() -> str:
    """``CLIP_ENGINE`` as set: auto (the default), torch, onnxruntime or openvino; else a ConfigError."""
    return env_choice(os.environ, "CLIP_ENGINE", "auto", ENGINES)


def openvino_installed() -> bool:
    return importlib.util.find_spec("openvino") is not None


def engine_for(device: str | None, has_onnx: bool, *, where: str = "") -> str:
    """``CLIP_ENGINE`` resolved with ``CLIP_PRECISION`` (clip_cpu.py), refusing what cannot serve, at start.

    auto on the CPU with the ONNX files is OpenVINO where bf16 is native and openvino is installed (bf16 is
    then proved at load, clip_openvino.py), else ONNX Runtime; without the files, or on CUDA, it is torch.
    """
    wanted = engine_setting()
    precision = _cpu.precision_setting()
    on_cpu = (device or ("cuda" if cuda_available() else "cpu")) == "cpu"
    if wanted in ("onnxruntime", "openvino") and not has_onnx:
        raise ValueError(f"CLIP_ENGINE={wanted}, but {where or 'the model'} has no {META}")
    if wanted == "auto":
        if on_cpu and has_onnx:
            proved = precision == "auto" and _cpu.native_bf16() is not None and openvino_installed()
            wanted = "openvino" if precision == "bf16" or proved else "onnxruntime"
        else:
            wanted = "torch"
            if on_cpu and where:
                _logger.warning("no ONNX files (%s) in %s: serving with torch", META, where)
    if on_cpu:
        _cpu.for_cpu(wanted)  # an unknown, GPU-only or non-native precision stops the start here
    if wanted == "openvino" and not openvino_installed():
        raise ConfigError(
            f"CLIP_ENGINE={engine_setting()} with CLIP_PRECISION={precision} needs OpenVINO, which is not "
            "installed here (pip install openvino)"
        )
    return wanted


def present(directory: str | Path) -> bool:
    return (Path(directory) / META).is_file()


def threads() -> int:
    """ONNX Runtime's intra-op threads: ``CLIP_ONNX_THREADS``, else the CPUs this process may run on."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return env_int(os.environ, "CLIP_ONNX_THREADS", env_int(os.environ, "OMP_NUM_THREADS", cpus or 1))


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _return_freed_memory() -> None:
    """Hand the heap ONNX Runtime freed while loading (the parsed graphs, ~the files' size) back to the system.

    glibc keeps freed heap pages mapped, so without this the RSS after load varies by hundreds of MB from
    start to start; elsewhere (musl, macOS) there is nothing to do.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def trim_length(tokens: np.ndarray, pool: str, eos: int | None) -> int:
    """Positions up to the batch's last EOT: all a causal tower pooling at EOT reads."""
    ends = tokens.argmax(axis=-1) if pool == "argmax" else (tokens == eos).argmax(axis=-1)
    return int(ends.max()) + 1


class OnnxTowers:
    """Both towers as ONNX Runtime sessions on the CPU, each run once at load (:meth:`check`), not at a request.

    Arrays in, float32 arrays out: nothing here needs torch.
    """

    engine, precision = "onnxruntime", "fp32"

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.meta: dict[str, Any] = json.loads((self.directory / META).read_text())
        trim = self.meta.get("trim")
        self.trim = (trim["pool"], trim["eos"]) if trim else None
        for name in {*self.meta["sha256"], TEXT_FILE, IMAGE_FILE}:
            if not (self.directory / name).is_file():
                raise OnnxModelError(f"{self.directory / name} is missing ({META} is there)")
        # Hashing the files (600 MB for ViT-B-32) and building the two sessions overlap: all release the GIL.
        with ThreadPoolExecutor(max_workers=3, thread_name_prefix="onnx-load") as pool:
            hashes = {name: pool.submit(_sha256, self.directory / name) for name in self.meta["sha256"]}
            loads = {name: pool.submit(self._load, name) for name in (TEXT_FILE, IMAGE_FILE)}
            for name, digest in hashes.items():  # a file that is not the exported one is named as such first
                if digest.result() != self.meta["sha256"][name]:
                    path = self.directory / name
                    raise OnnxModelError(f"{path} is not the file {META} describes (sha256 differs): export it again")
            self.sessions = {name: load.result() for name, load in loads.items()}
        self.check()
        _return_freed_memory()

    def _load(self, name: str) -> Any:
        """One tower's ONNX Runtime session (clip_openvino.OpenVinoTowers compiles it with OpenVINO instead)."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads()
        options.inter_op_num_threads = 1
        if os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE":  # the caller asked for idle threads to sleep
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        path = self.directory / name
        try:
            return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own classes for unreadable or invalid graphs
            raise OnnxModelError(f"cannot load {path}: {e}") from e

    @property
    def dimension(self) -> int:
        return int(self.meta["dimension"])

    def tokenizer(self) -> _tokens.TextTokens | None:
        """The exported tokenizer (clip_tokens.py), or None for an export from before it was saved."""
        described = self.meta.get("tokenizer")
        if not described:
            return None
        try:
            return _tokens.load(self.directory, described, int(self.meta["context_length"]))
        except Exception as e:  # tokenizers' own errors for an unreadable file
            raise OnnxModelError(f"cannot load {self.directory / described['file']}: {e}") from e

    def _run(self, name: str, array: np.ndarray) -> np.ndarray:
        session = self.sessions[name]
        return session.run(None, {session.get_inputs()[0].name: array})[0]

    def encode_text(self, tokens: Any) -> np.ndarray:
        """Features of int64 token rows (a numpy array, or anything numpy reads such as a CPU tensor)."""
        tokens = np.asarray(tokens, dtype=np.int64)
        if self.trim is not None:
            tokens = tokens[:, : trim_length(tokens, *self.trim)]
        return self._run(TEXT_FILE, np.ascontiguousarray(tokens))

    def encode_image(self, pixels: Any) -> np.ndarray:
        """Features of a float32 NCHW batch."""
        return self._run(IMAGE_FILE, np.ascontiguousarray(np.asarray(pixels), dtype=np.float32))

    def check(self) -> None:
        """One probe through each tower: a graph of the wrong shape or model is refused at load, naming its file."""
        size = self.meta["preprocess"]["size"]
        height, width = (size, size) if isinstance(size, int) else size
        tokens = np.zeros((1, int(self.meta["context_length"])), dtype=np.int64)
        tokens[0, :2] = [1, 2]
        probes = {
            TEXT_FILE: lambda: self.encode_text(tokens),
            IMAGE_FILE: lambda: self.encode_image(np.zeros((1, 3, height, width), dtype=np.float32)),
        }
        for name, probe in probes.items():
            try:
                shape = tuple(probe().shape)
            except Exception as e:  # a wrong input name, type or rank fails inside onnxruntime
                raise OnnxModelError(f"{self.directory / name} cannot run: {e}") from e
            if shape != (1, self.dimension):
                raise OnnxModelError(f"{self.directory / name} gives {shape} features, not (1, {self.dimension})")
