"""inference.py loaded as the container loads it (by path), and the bundled tiny-shapes model, once per session."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from model_code.code import clip_cpu, clip_export
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


def onnx_runtime_fp32(load: Callable[[], Any]) -> Any:
    """``load()`` with CLIP_ENGINE=onnxruntime: these fixtures are the fp32 reference whatever the CPU has."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CLIP_ENGINE", "onnxruntime")
        patch.delenv("CLIP_PRECISION", raising=False)
        return load()


@pytest.fixture(scope="session")
def tiny_onnx_dir(tiny: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny-shapes' exported ONNX files, as an archive carries them."""
    directory = tmp_path_factory.mktemp("tiny-onnx")
    clip_export.export(tiny, directory)
    return directory


@pytest.fixture(scope="session")
def tiny_onnx(inference: ModuleType, tiny_onnx_dir: Path) -> Any:
    """tiny-shapes exported to ONNX and served by ONNX Runtime in fp32, as an archive with the ONNX files is."""
    return onnx_runtime_fp32(
        lambda: inference.load_onnx(tiny_onnx_dir, "tiny-shapes", config_path=CONFIG_PATH, model_id="tiny-shapes")
    )


@pytest.fixture(scope="session")
def vit_b32_onnx_dir(vit_b32: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("vit-b-32-onnx")
    clip_export.export(vit_b32, directory)
    return directory


@pytest.fixture(scope="session")
def vit_b32_onnx(inference: ModuleType, vit_b32: Any, vit_b32_onnx_dir: Path) -> Any:
    return onnx_runtime_fp32(lambda: inference.load_onnx(vit_b32_onnx_dir, "ViT-B-32", model_id=vit_b32.model_id))


SETTINGS = ("CLIP_ENGINE", "CLIP_PRECISION", "CLIP_BF16_MIN_COSINE")
BF16_CPU = frozenset({"avx512_bf16", "avx512f", "avx2"})  # what a CPU with native bf16 reports (no AMX)


@pytest.fixture(scope="session")
def load_cpu(inference: ModuleType) -> Callable[..., Any]:
    """``load_onnx(directory)`` under the CLIP_* settings given (others unset); ``flags`` stands for /proc/cpuinfo's."""

    def load(directory: Path, name: str = "tiny-shapes", *, flags: frozenset[str] | None = None, **env: str) -> Any:
        with pytest.MonkeyPatch.context() as patch:
            for key in SETTINGS:
                patch.delenv(key, raising=False)
            for key, value in env.items():
                patch.setenv(key, value)
            if flags is not None:
                patch.setattr(clip_cpu, "cpu_flags", lambda: flags)
            config = CONFIG_PATH if name == "tiny-shapes" else None
            return inference.load_onnx(directory, name, config_path=config, model_id=name)

    return load


@pytest.fixture(scope="session")
def bf16_cpu() -> frozenset[str]:
    """Flags under which bf16 serves: this CPU's where it has native bf16, else forced where OpenVINO can run bf16.

    OpenVINO itself runs bf16 only on AVX-512 or AMX CPUs (it compiles bf16 graphs as f32 on AVX2 ones): there the
    bf16 path cannot be run at all, and the tests that need it are skipped, saying so.
    """
    import openvino as ov

    if "BF16" not in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        pytest.skip("OpenVINO cannot run bf16 on this CPU (no AVX-512 or AMX): it would compile bf16 graphs as f32")
    return clip_cpu.cpu_flags() if clip_cpu.native_bf16() else BF16_CPU


@pytest.fixture(scope="session")
def tiny_bf16(load_cpu: Callable[..., Any], tiny_onnx_dir: Path, bf16_cpu: frozenset[str]) -> Any:
    """tiny-shapes on OpenVINO in bf16, asked for explicitly (served whatever the load-time check measured)."""
    return load_cpu(tiny_onnx_dir, flags=bf16_cpu, CLIP_PRECISION="bf16")


@pytest.fixture(scope="session")
def vit_b32_bf16(load_cpu: Callable[..., Any], vit_b32_onnx_dir: Path, bf16_cpu: frozenset[str]) -> Any:
    return load_cpu(vit_b32_onnx_dir, "ViT-B-32", flags=bf16_cpu, CLIP_PRECISION="bf16")


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
