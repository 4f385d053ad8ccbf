"""inference.py loaded as the container loads it (by path), and the bundled tiny-shapes model, once per session."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from model_code.code import clip_export
from model_code.code import inference as inference_module
from model_code.tiny_shapes import CHECKPOINT_PATH, CONFIG_PATH


@pytest.fixture(scope="session")
def inference() -> ModuleType:
    return inference_module


@pytest.fixture(scope="session")
def tiny(inference: ModuleType) -> Any:
    return inference.load_model("tiny-shapes", str(CHECKPOINT_PATH), device="cpu", config_path=CONFIG_PATH)


@pytest.fixture(scope="session")
def vit_b32(inference: ModuleType) -> Any:
    """ViT-B-32 with random weights (the same in every process: load_model seeds them)."""
    return inference.load_model("ViT-B-32", "", device="cpu")


@pytest.fixture(scope="session")
def tiny_onnx(inference: ModuleType, tiny: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """tiny-shapes exported to ONNX and served by ONNX Runtime, as an archive with the ONNX files is."""
    directory = tmp_path_factory.mktemp("tiny-onnx")
    clip_export.export(tiny, directory)
    return inference.load_onnx(directory, "tiny-shapes", config_path=CONFIG_PATH, model_id="tiny-shapes")


@pytest.fixture(scope="session")
def vit_b32_onnx(inference: ModuleType, vit_b32: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    directory = tmp_path_factory.mktemp("vit-b-32-onnx")
    clip_export.export(vit_b32, directory)
    return inference.load_onnx(directory, "ViT-B-32", model_id=vit_b32.model_id)


@pytest.fixture
def serve(inference: ModuleType, tiny: Any) -> Callable[..., tuple[bytes, str]]:
    """The container's whole path on tiny-shapes: body -> input_fn -> predict_fn -> output_fn."""

    def run(body: bytes | dict[str, Any], content_type: str = "application/json", accept: str = "application/json"):
        raw = json.dumps(body).encode() if isinstance(body, dict) else body
        return inference.output_fn(inference.predict_fn(inference.input_fn(raw, content_type), tiny), accept)

    return run


@pytest.fixture(scope="session")
def model_dir(inference: ModuleType, tiny: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An extracted archive: manifest, config, weights and the ONNX files."""
    root = tmp_path_factory.mktemp("archive")
    shutil.copy(CONFIG_PATH, root / "tiny-shapes.json")
    shutil.copy(CHECKPOINT_PATH, root / "tiny-shapes.pt")
    manifest = {
        "model": "tiny-shapes",
        "model_id": "tiny-shapes",
        "config": "tiny-shapes.json",
        "weights": "tiny-shapes.pt",
    }
    (root / "clip_model.json").write_text(json.dumps(manifest))
    clip_export.export(tiny, root)
    return root
