"""The local model's ONNX towers, exported once per model, weights and toolchain, then reused across starts.

Exporting takes seconds (tiny-shapes ~3 s, ViT-B-32 ~15 s on 2 cores); loading the exported towers takes
well under that and never builds the torch model. The folder is keyed by everything the graphs depend on:
the model name and config, the weights' bytes (or the pretrained tag) and activation, torch's and
open_clip's versions and the model code that traces them. ``CLIP_ONNX_CACHE`` moves it (default
``build/onnx-cache`` in the checkout).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from model_code.code import clip_onnx
from model_code.code.clip_archive import file_sha256
from model_code.tiny_shapes import CODE_DIR

ROOT = Path(__file__).resolve().parents[1]
# The model code that writes the exported files: a change to any of them is a new export.
EXPORT_CODE = ("clip_export.py", "clip_onnx.py", "clip_text.py", "clip_tokens.py")
_logger = logging.getLogger(__name__)


def cache_root() -> Path:
    return Path(os.environ.get("CLIP_ONNX_CACHE") or ROOT / "build" / "onnx-cache")


def cache_key(model_name: str, weights: str, config: Path | None) -> str:
    """Everything the exported files depend on, read without importing torch or open_clip.

    The activation enters as stated (``CLIP_QUICK_GELU``), not as resolved: with the model name, the weights
    and open_clip's version it determines the resolved one, which only an export needs
    (clip_activation.quick_gelu_for imports open_clip). A warm start therefore never builds the model.
    """
    digest = hashlib.sha256()
    stated = os.environ.get("CLIP_QUICK_GELU", "").strip().lower()
    for part in (model_name, stated, _version("torch"), _version("open_clip_torch")):
        digest.update(part.encode() + b"\0")
    for path in (config, *(CODE_DIR / name for name in EXPORT_CODE)):
        digest.update(path.read_bytes() if path is not None else b"-")
    if weights and Path(weights).is_file():
        digest.update(bytes.fromhex(file_sha256(weights)))  # hashed once per start
    else:
        digest.update(f"tag:{weights}".encode())  # a pretrained tag, or "" for seeded random weights
    return digest.hexdigest()[:20]


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "-"


def exported(key: str, load_torch: Callable[[], Any]) -> Path:
    """The folder holding the towers for ``key``; on a miss ``load_torch()`` builds the model to export."""
    directory = cache_root() / key
    if clip_onnx.present(directory):
        return directory
    started = time.monotonic()
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=directory.parent))  # same file system: atomic rename
    try:
        clip = load_torch()
        try:
            from model_code.code import clip_export  # torch: only when a model is exported

            clip_export.export(clip, staging)
        finally:
            clip.pool.shutdown(wait=False)
        try:
            staging.rename(directory)
        except OSError:  # another process finished the same export first: use its folder
            if not clip_onnx.present(directory):
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    _logger.info("exported the model to ONNX in %.1f s: %s", time.monotonic() - started, directory)
    return directory
