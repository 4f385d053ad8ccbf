"""The model code reads its settings with the core's reader: one file, the same words and the same errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import omnisearch_embed.env as core_env
from model_code.code import clip_env

ROOT = Path(__file__).resolve().parents[2]


def test_the_core_and_the_model_code_read_with_one_file() -> None:
    assert os.path.samefile(core_env.__file__, clip_env.__file__)
    assert (ROOT / "layers/common/omnisearch_embed/env.py").is_symlink()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [("CLIP_TEXT_BATCH_SIZE", "lots", "CLIP_TEXT_BATCH_SIZE='lots' is not an integer"),
     ("CLIP_MAX_IMAGE_PIXELS", "0", "CLIP_MAX_IMAGE_PIXELS=0 must be at least 1"),
     ("CLIP_JPEG_DRAFT_SCALE", "-1", "CLIP_JPEG_DRAFT_SCALE=-1.0 must be at least 0.0"),
     ("CLIP_FAST_TOKENIZER", "maybe", "CLIP_FAST_TOKENIZER='maybe' is not a boolean (use true or false)")],
)  # fmt: skip
def test_a_bad_setting_stops_the_import_with_the_config_error(variable: str, value: str, message: str) -> None:
    env = {**os.environ, variable: value, "PYTHONPATH": os.pathsep.join([str(ROOT / "layers/common"), str(ROOT)])}
    done = subprocess.run(
        [sys.executable, "-c", "import model_code.code.inference, model_code.code.clip_torch"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].endswith(f"ConfigError: {message}"), done.stderr[-500:]


def test_precision_and_engine_are_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    from model_code.code import clip_onnx

    monkeypatch.setenv("CLIP_ENGINE", "TensorRT")
    with pytest.raises(
        clip_env.ConfigError, match=r"^CLIP_ENGINE='TensorRT' is not one of auto, torch, onnxruntime, openvino$"
    ):
        clip_onnx.engine_for("cpu", has_onnx=True)
    monkeypatch.setenv("CLIP_ENGINE", " ONNXRuntime ")
    assert clip_onnx.engine_for("cpu", has_onnx=True) == "onnxruntime"
