"""What an unpacked model.tar.gz holds for model_fn: the model name, weights, config, id and activation.

Ships next to inference.py in code/. Either package_model.py's manifest (clip_model.json) names them, or the
folder has an open_clip config JSON and a weights file beside it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

TINY_SHAPES = "tiny-shapes"
MANIFEST = "clip_model.json"  # written by scripts/package_model.py; optional
WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")
_logger = logging.getLogger("omnisearch_embed.model")


def announce(model_name: str) -> None:
    """Say at load, on either engine, that the bundled demo model is not a general-purpose CLIP."""
    if model_name == TINY_SHAPES:
        _logger.warning(
            "serving tiny-shapes, a demo model that knows only coloured shapes: it is not a general-purpose CLIP "
            "(set CLIP_MODEL and CLIP_PRETRAINED to serve a real one)"
        )


@dataclass(frozen=True)
class ArchiveModel:
    model: str
    weights: str  # a file in the folder, a pretrained tag, or "" (random)
    config: Path | None
    model_id: str
    quick_gelu: bool | None  # None: the manifest does not say (clip_activation decides)


def model_id_for(model: str, pretrained: str) -> str:
    """The id that travels with every answer; same rule as omnisearch_embed.settings.model_id_for."""
    if model == TINY_SHAPES:
        return model
    if not pretrained:
        return f"{model}/random"
    return f"{model}/{os.path.basename(pretrained.rstrip('/')) if '/' in pretrained else pretrained}"


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


def read(root: Path) -> ArchiveModel | None:
    """The model ``root`` holds, or None when it holds none (model_fn then reads the environment)."""
    if (root / MANIFEST).is_file():
        m = json.loads((root / MANIFEST).read_text())
        config = root / m["config"] if m.get("config") else None
        weights = str(root / m["weights"]) if m.get("weights") else m.get("pretrained", "")
        model_id = m.get("model_id") or model_id_for(m["model"], weights)
        return ArchiveModel(m["model"], weights, config, model_id, m.get("quick_gelu"))
    config = _find_config(root) if root.is_dir() else None
    if config is None:
        return None
    found = _find_weights(root)
    weights = str(found) if found else ""
    return ArchiveModel(config.stem, weights, config, model_id_for(config.stem, weights), None)


def file_sha256(path: str | Path) -> str:
    """A weights file's sha256, hashed once while its size and modification time stay the same.

    Start-up asks twice for the same file (which activation it needs, and the local ONNX cache's key);
    a ViT-B-32 checkpoint is 600 MB, so the second answer comes from here.
    """
    stat = os.stat(path)
    return _sha256_of(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
