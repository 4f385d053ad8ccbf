"""bf16 on OpenVINO against fp32 on ONNX Runtime: the golden texts and odd images, zero-shot accuracy, what auto keeps.

Runs on any CPU where OpenVINO can run bf16: natively where the CPU has amx_bf16 or avx512_bf16, forced (the flags
stood in for) on other AVX-512 CPUs. On AVX2-only CPUs OpenVINO compiles bf16 as f32 and these are skipped.
"""

from __future__ import annotations

import numpy as np

from model_code.tiny_shapes.evaluate import evaluate, inference_embedders
from omnisearch_testkit.golden_texts import GOLDEN
from tests.model_code.test_torch_free import ODD

BAR = 0.9999


def cosines(inference, a, b, kind, items) -> np.ndarray:
    request = inference.Request(kind, list(items))
    x, y = inference.predict_fn(request, a).vectors, inference.predict_fn(request, b).vectors
    return (x * y).sum(axis=1)  # rows are normalised


def test_vit_b32_bf16_matches_fp32_on_the_golden_texts_and_odd_images(inference, vit_b32_bf16, vit_b32_onnx):
    assert (vit_b32_bf16.engine, vit_b32_bf16.precision, vit_b32_bf16.onnx.runs_in) == ("openvino", "bf16", "bf16")
    texts = cosines(inference, vit_b32_bf16, vit_b32_onnx, "texts", GOLDEN)
    images = cosines(inference, vit_b32_bf16, vit_b32_onnx, "images", ODD.values())
    assert texts.min() >= BAR and images.min() >= BAR, (texts.min(), dict(zip(ODD, images.round(6), strict=True)))
    assert texts.max() < 1 - 1e-7  # bf16 really ran: fp32 against itself would give 1
    assert vit_b32_bf16.describe()["bf16_min_cosine"] >= BAR  # the load-time check measured the same


def test_vit_b32_auto_keeps_bf16_where_it_is_native(load_cpu, vit_b32_onnx_dir, bf16_cpu):
    clip = load_cpu(vit_b32_onnx_dir, "ViT-B-32", flags=bf16_cpu)
    report = clip.describe()
    assert (report["engine"], report["precision"]) == ("openvino", "bf16"), report
    assert report["bf16_min_cosine"] >= BAR and report["cpu_flags"][0] in ("amx_bf16", "avx512_bf16")


def test_tiny_shapes_bf16_matches_fp32_on_the_golden_texts(inference, tiny_bf16, tiny_onnx):
    assert (tiny_bf16.engine, tiny_bf16.precision) == ("openvino", "bf16")
    texts = cosines(inference, tiny_bf16, tiny_onnx, "texts", GOLDEN)
    assert texts.min() >= BAR and texts.max() < 1 - 1e-7


def test_tiny_shapes_auto_serves_within_the_bar_on_the_golden_texts_and_odd_images(
    inference, load_cpu, tiny_onnx_dir, tiny_onnx, bf16_cpu
):
    """Whatever auto keeps must hold the bar: tiny-shapes' bf16 misses it on some odd images, which the check sees."""
    clip = load_cpu(tiny_onnx_dir, flags=bf16_cpu)
    report = clip.describe()
    texts = cosines(inference, clip, tiny_onnx, "texts", GOLDEN)
    images = cosines(inference, clip, tiny_onnx, "images", ODD.values())
    assert texts.min() >= BAR and images.min() >= BAR, (report, dict(zip(ODD, images.round(6), strict=True)))
    if report["precision"] == "fp32":
        assert report["bf16_min_cosine"] < BAR and "failed the fidelity check" in report["precision_reason"]
    else:
        assert report["bf16_min_cosine"] >= BAR


def test_tiny_shapes_zero_shot_accuracy_is_unchanged_in_bf16(tiny_bf16, tiny_onnx):
    fp32 = evaluate(*inference_embedders(tiny_onnx), seed=4_242_424, per_class=10)
    bf16 = evaluate(*inference_embedders(tiny_bf16), seed=4_242_424, per_class=10)
    assert fp32["zero_shot_top1"] >= 0.90 and bf16 == fp32, (bf16, fp32)
