"""CLIP_ENGINE and CLIP_PRECISION on the CPU: what each choice serves, what is refused at start, and the faults."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from model_code.code import clip_env, clip_onnx, clip_openvino
from omnisearch_testkit.golden_texts import GOLDEN

AVX2_ONLY = frozenset({"avx2", "fma"})
NATIVE = frozenset({"avx512_bf16", "avx512f", "avx2"})


def embed(inference, clip, kind, items) -> np.ndarray:
    return inference.predict_fn(inference.Request(kind, list(items)), clip).vectors


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("CLIP_PRECISION", "int4", "CLIP_PRECISION='int4' is not one of auto, fp32, fp16, bf16"),
        ("CLIP_ENGINE", "tensorrt", "CLIP_ENGINE='tensorrt' is not one of auto, torch, onnxruntime, openvino"),
    ],
)
def test_an_unknown_setting_stops_the_start_naming_the_variable(
    inference, model_dir, monkeypatch, variable, value, message
):
    monkeypatch.setenv(variable, value)
    with pytest.raises(clip_env.ConfigError, match=f"^{message}$"):
        inference.model_fn(str(model_dir))


def test_a_bad_fidelity_bar_is_a_config_error(load_cpu, tiny_onnx_dir, bf16_cpu):
    with pytest.raises(clip_env.ConfigError, match=r"^CLIP_BF16_MIN_COSINE='close' is not a number$"):
        load_cpu(tiny_onnx_dir, flags=bf16_cpu, CLIP_BF16_MIN_COSINE="close")


@pytest.mark.parametrize("engine", ["auto", "openvino", "torch"])
def test_bf16_without_native_bf16_is_refused_naming_the_missing_feature(inference, model_dir, monkeypatch, engine):
    from model_code.code import clip_cpu

    monkeypatch.setattr(clip_cpu, "cpu_flags", lambda: AVX2_ONLY)
    monkeypatch.setenv("CLIP_PRECISION", "bf16")
    monkeypatch.setenv("CLIP_ENGINE", engine)
    with pytest.raises(clip_env.ConfigError, match=r"neither amx_bf16 nor avx512_bf16 \(/proc/cpuinfo flags: avx2\)"):
        clip_onnx.engine_for("cpu", has_onnx=True)
    with pytest.raises(clip_env.ConfigError, match=r"^CLIP_PRECISION=bf16 needs a CPU that multiplies bf16 natively"):
        inference.model_fn(str(model_dir))


@pytest.mark.parametrize(
    ("engine", "precision", "message"),
    [
        ("auto", "fp16", r"CLIP_PRECISION=fp16 is a GPU precision: on the CPU use auto, fp32 or bf16"),
        ("onnxruntime", "bf16", r"ONNX Runtime serves fp32 only on the CPU; bf16 runs on OpenVINO"),
    ],
)
def test_what_a_cpu_engine_cannot_serve_is_refused(monkeypatch, engine, precision, message):
    from model_code.code import clip_cpu

    monkeypatch.setattr(clip_cpu, "cpu_flags", lambda: NATIVE)
    monkeypatch.setenv("CLIP_ENGINE", engine)
    monkeypatch.setenv("CLIP_PRECISION", precision)
    with pytest.raises(clip_env.ConfigError, match=message):
        clip_onnx.engine_for("cpu", has_onnx=True)
    if engine == "auto":  # the same setting means fp16 on CUDA, where torch serves it
        assert clip_onnx.engine_for("cuda", has_onnx=True) == "torch"


def test_openvino_asked_for_where_it_is_not_installed_names_the_package(monkeypatch):
    monkeypatch.setattr(clip_onnx, "openvino_installed", lambda: False)
    monkeypatch.setenv("CLIP_ENGINE", "openvino")
    with pytest.raises(
        clip_env.ConfigError, match=r"needs OpenVINO, which is not installed here \(pip install openvino\)"
    ):
        clip_onnx.engine_for("cpu", has_onnx=True)
    monkeypatch.setenv("CLIP_ENGINE", "auto")  # auto does without it: ONNX Runtime in fp32
    assert clip_onnx.engine_for("cpu", has_onnx=True) == "onnxruntime"


def test_auto_without_native_bf16_serves_onnx_runtime_fp32_and_says_why(load_cpu, tiny_onnx_dir, caplog):
    with caplog.at_level(logging.INFO, logger="omnisearch_embed.model"):
        clip = load_cpu(tiny_onnx_dir, flags=AVX2_ONLY)
    assert (clip.engine, clip.precision) == ("onnxruntime", "fp32")
    report = clip.describe()
    assert report["precision_reason"] == "this CPU has neither amx_bf16 nor avx512_bf16: bf16 would be emulated"
    assert report["bf16_min_cosine"] is None and report["cpu_flags"] == ["avx2"]
    loaded = [r.message for r in caplog.records if r.message.startswith("loaded tiny-shapes")]
    assert loaded == [f"loaded tiny-shapes with onnxruntime fp32 on the CPU ({tiny_onnx_dir}), dimension 64: "
                      "this CPU has neither amx_bf16 nor avx512_bf16: bf16 would be emulated"]  # fmt: skip


def test_a_probe_that_cannot_pass_serves_fp32_and_says_why_once(load_cpu, tiny_onnx_dir, bf16_cpu, caplog):
    with caplog.at_level(logging.INFO, logger="omnisearch_embed.model"):
        clip = load_cpu(tiny_onnx_dir, flags=bf16_cpu, CLIP_BF16_MIN_COSINE="1.5")
    assert (clip.engine, clip.precision, clip.onnx.engine) == ("onnxruntime", "fp32", "onnxruntime")
    report = clip.describe()
    assert 0.99 < report["bf16_min_cosine"] < 1.0 and report["precision"] == "fp32"
    assert "bf16 failed the fidelity check at load (min cos" in report["precision_reason"]
    warned = [r.message for r in caplog.records if r.levelno == logging.WARNING and "fidelity" in r.message]
    assert len(warned) == 1 and warned[0].endswith("< 1.5): serving fp32 on onnxruntime")


def test_a_bar_bf16_meets_keeps_it_for_every_request(inference, load_cpu, tiny_onnx_dir, tiny_onnx, bf16_cpu):
    clip = load_cpu(tiny_onnx_dir, flags=bf16_cpu, CLIP_BF16_MIN_COSINE="0.999")
    assert (clip.engine, clip.precision, clip.onnx.runs_in) == ("openvino", "bf16", "bf16")
    assert 0.999 <= clip.describe()["bf16_min_cosine"] < 1.0  # bf16 is not fp32: the cosine shows it
    first = embed(inference, clip, "texts", GOLDEN)
    for _ in range(3):  # later requests: the same precision, so the same vectors
        np.testing.assert_array_equal(embed(inference, clip, "texts", GOLDEN), first)
    assert clip.precision == "bf16" and clip.onnx.runs_in == "bf16"
    assert not np.array_equal(first, embed(inference, tiny_onnx, "texts", GOLDEN))


def test_openvino_in_fp32_gives_onnx_runtimes_vectors(inference, load_cpu, tiny_onnx_dir, tiny_onnx):
    clip = load_cpu(tiny_onnx_dir, CLIP_ENGINE="openvino", CLIP_PRECISION="fp32")
    assert (clip.engine, clip.precision, clip.onnx.runs_in) == ("openvino", "fp32", "fp32")
    assert clip.describe()["precision_reason"] == "CLIP_PRECISION=fp32"
    a, b = embed(inference, clip, "texts", GOLDEN), embed(inference, tiny_onnx, "texts", GOLDEN)
    assert float((a * b).sum(axis=1).min()) >= 0.99999


def test_a_compile_failure_names_the_file_and_auto_falls_back_to_onnx_runtime(
    load_cpu, tiny_onnx_dir, bf16_cpu, monkeypatch, caplog
):
    import openvino as ov

    compile_model = ov.Core.compile_model

    def refuse_image(self, model, *args, **kwargs):
        if str(model).endswith("image.onnx"):
            raise RuntimeError("Exception from src/inference/src/cpp/core.cpp: unsupported operation")
        return compile_model(self, model, *args, **kwargs)

    monkeypatch.setattr(ov.Core, "compile_model", refuse_image)
    with caplog.at_level(logging.WARNING, logger="omnisearch_embed.model"):
        clip = load_cpu(tiny_onnx_dir, flags=bf16_cpu)
    assert (clip.engine, clip.precision) == ("onnxruntime", "fp32")
    named = f"OpenVINO cannot compile {tiny_onnx_dir / 'image.onnx'} (bf16)"
    assert clip.describe()["precision_reason"].startswith(named)
    assert [r.message for r in caplog.records if "cannot compile" in r.message] == [
        f"{named}: Exception from src/inference/src/cpp/core.cpp: unsupported operation: serving fp32 on ONNX Runtime"
    ]
    for settings in ({"CLIP_ENGINE": "openvino"}, {"CLIP_PRECISION": "bf16"}):  # asked for: no fallback
        with pytest.raises(clip_openvino.OpenVinoError, match=r"^OpenVINO cannot compile .*image\.onnx"):
            load_cpu(tiny_onnx_dir, flags=bf16_cpu, **settings)


def test_the_probe_texts_are_golden_texts() -> None:
    assert set(clip_openvino.PROBE_TEXTS) <= set(GOLDEN) and len(clip_openvino.PROBE_TEXTS) >= 12
    assert len(clip_openvino.probe_images()) >= 8
