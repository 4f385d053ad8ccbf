"""The bundled tiny-shapes CLIP (a demo and test model): its config and checkpoint, and where code/ lives."""

from __future__ import annotations

from pathlib import Path

MODEL_DIR = Path(__file__).resolve().parent
CONFIG_PATH = MODEL_DIR / "tiny-shapes.json"
CHECKPOINT_PATH = MODEL_DIR / "tiny-shapes.pt"
CODE_DIR = MODEL_DIR.parent / "code"
