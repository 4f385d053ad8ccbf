"""The toolkit's door on OpenVINO imports neither torch nor open_clip; on ONNX Runtime alone, never OpenVINO."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from omnisearch_testkit.golden_texts import GOLDEN
from omnisearch_testkit.images import image_bytes

CODE = Path(__file__).resolve().parents[2] / "model_code" / "code"
# As the SageMaker toolkit runs inference.py, with torch and open_clip impossible to import; FLAGS, when set,
# stands for /proc/cpuinfo's flags (to force the bf16 path on a CPU where OpenVINO can run it).
SERVE = """
import base64, json, sys
sys.modules.update(torch=None, open_clip=None)
sys.path.insert(0, {code!r})
import clip_cpu, inference
if {flags!r} is not None:
    clip_cpu.cpu_flags = lambda: frozenset({flags!r})
clip = inference.model_fn({model_dir!r})
answers = {{}}
for kind, items in (("texts", {texts!r}), ("images", [base64.b64encode(open({image!r}, "rb").read()).decode()])):
    request = inference.input_fn(json.dumps({{kind: items}}), "application/json")
    body, _ = inference.output_fn(inference.predict_fn(request, clip), "application/json")
    answers[kind] = json.loads(body)["embeddings"]
loaded = [m for m in ("torch", "open_clip", "openvino", "onnxruntime") if sys.modules.get(m)]
print(json.dumps({{"engine": clip.engine, "precision": clip.precision, "loaded": loaded, **answers}}))
"""


def serve(model_dir: Path, tmp_path: Path, flags: frozenset[str] | None = None, **env: str) -> dict[str, Any]:
    image = tmp_path / "image.jpg"
    image.write_bytes(image_bytes("JPEG", (300, 200), (200, 30, 30)))
    script = SERVE.format(
        code=str(CODE), model_dir=str(model_dir), texts=GOLDEN[:20], image=str(image), flags=flags and sorted(flags)
    )
    settings = {k: v for k, v in os.environ.items() if not k.startswith(("CLIP_ENGINE", "CLIP_PRECISION", "CLIP_BF16"))}
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**settings, **env},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def check_texts(inference, tiny, answer: dict[str, Any]) -> None:
    expected = inference.predict_fn(inference.Request("texts", GOLDEN[:20]), tiny).vectors
    assert float((np.asarray(answer["texts"]) * expected).sum(axis=1).min()) >= 0.9999
    assert np.asarray(answer["images"]).shape == (1, 64)


def test_openvino_fp32_serves_without_torch(inference, tiny, model_dir, tmp_path) -> None:
    answer = serve(model_dir, tmp_path, CLIP_ENGINE="openvino", CLIP_PRECISION="fp32")
    assert (answer["engine"], answer["precision"]) == ("openvino", "fp32")
    assert answer["loaded"] == ["openvino"]  # not even ONNX Runtime: OpenVINO reads the ONNX files itself
    check_texts(inference, tiny, answer)


def test_auto_proving_bf16_serves_without_torch(inference, tiny, model_dir, tmp_path, bf16_cpu) -> None:
    answer = serve(model_dir, tmp_path, bf16_cpu, CLIP_BF16_MIN_COSINE="0.99")  # a bar tiny-shapes' bf16 meets
    assert (answer["engine"], answer["precision"]) == ("openvino", "bf16")
    assert answer["loaded"] == ["openvino", "onnxruntime"]  # the fp32 reference ran on ONNX Runtime
    check_texts(inference, tiny, answer)


@pytest.mark.parametrize("engine", ["onnxruntime", "auto"])
def test_onnx_runtime_serving_never_imports_openvino(inference, tiny, model_dir, tmp_path, engine) -> None:
    """auto on a CPU without native bf16 (the flags say so) loads neither OpenVINO nor torch."""
    answer = serve(model_dir, tmp_path, frozenset({"avx2"}), CLIP_ENGINE=engine)
    assert (answer["engine"], answer["precision"], answer["loaded"]) == ("onnxruntime", "fp32", ["onnxruntime"])
    check_texts(inference, tiny, answer)
