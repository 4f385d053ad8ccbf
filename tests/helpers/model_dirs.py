"""Copies of an extracted model archive, whole or without its ONNX files, for tests that change them."""

from __future__ import annotations

import shutil
from pathlib import Path

ONNX_FILES = ("text.onnx", "image.onnx", "clip_onnx.json")


def copy_of(model_dir: Path, tmp_path: Path, *, onnx: bool = True) -> Path:
    target = tmp_path / "model"
    shutil.copytree(model_dir, target)
    if not onnx:
        for name in ONNX_FILES:
            (target / name).unlink()
    return target
