"""ONNX Runtime gives open_clip's vectors, and model_fn picks the engine by CLIP_ENGINE and the archive's files."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from model_code.tiny_shapes.evaluate import evaluate, inference_embedders, png_bytes
from model_code.tiny_shapes.shapes import CLASSES, balanced_set
from omnisearch_testkit.golden_texts import GOLDEN, random_texts
from tests.helpers.model_dirs import copy_of

LONG = ["a very long caption about a " + "large green triangle " * 20, "circle " * 90]


def embed(inference, clip, kind, items):
    return inference.predict_fn(inference.Request(kind, list(items)), clip)


def min_cos(a: np.ndarray, b: np.ndarray) -> float:
    return float((a * b).sum(axis=1).min())  # rows are normalised


def test_tiny_shapes_golden_texts_match_torch(inference, tiny, tiny_onnx):
    texts = [*GOLDEN, *LONG, *random_texts(40, seed=7)]
    torch_out, onnx_out = embed(inference, tiny, "texts", texts), embed(inference, tiny_onnx, "texts", texts)
    assert min_cos(torch_out.vectors, onnx_out.vectors) >= 0.9999
    assert onnx_out.tokens == torch_out.tokens and onnx_out.truncated == torch_out.truncated
    assert tiny_onnx.engine == "onnxruntime" and tiny.engine == "torch" and tiny_onnx.model is None


def test_tiny_shapes_images_match_torch(inference, tiny, tiny_onnx):
    images = [png_bytes(s.image) for s in balanced_set(11, 1)[:12]]
    torch_out, onnx_out = embed(inference, tiny, "images", images), embed(inference, tiny_onnx, "images", images)
    assert min_cos(torch_out.vectors, onnx_out.vectors) >= 0.9999


def test_every_batch_size_and_length_runs_on_one_graph(inference, tiny, tiny_onnx):
    for texts in (["x"], GOLDEN[:3], LONG, [*GOLDEN[:5], LONG[1]]):
        assert (
            min_cos(embed(inference, tiny, "texts", texts).vectors, embed(inference, tiny_onnx, "texts", texts).vectors)
            >= 0.9999
        )


def test_tiny_shapes_keeps_its_zero_shot_accuracy(tiny_onnx):
    result = evaluate(*inference_embedders(tiny_onnx), seed=4_242_424, per_class=10)
    assert result["images"] == 10 * len(CLASSES)
    assert result["zero_shot_top1"] >= 0.90, result


def test_logit_scale_travels_with_the_answer(inference, tiny, tiny_onnx):
    assert tiny_onnx.logit_scale == pytest.approx(tiny.logit_scale) and tiny.logit_scale > 1
    raw, _ = inference.output_fn(embed(inference, tiny_onnx, "texts", ["a red circle"]), "application/json")
    assert json.loads(raw)["logit_scale"] == pytest.approx(tiny.logit_scale)


def test_vit_b32_random_weights_match_torch(inference, vit_b32, vit_b32_onnx):
    texts = [GOLDEN[0], GOLDEN[4], GOLDEN[12], LONG[1]]
    assert (
        min_cos(
            embed(inference, vit_b32, "texts", texts).vectors, embed(inference, vit_b32_onnx, "texts", texts).vectors
        )
        >= 0.9999
    )
    images = [png_bytes(s.image) for s in balanced_set(3, 1)[:2]]
    assert (
        min_cos(
            embed(inference, vit_b32, "images", images).vectors,
            embed(inference, vit_b32_onnx, "images", images).vectors,
        )
        >= 0.9999
    )


@pytest.mark.parametrize(
    ("engine", "served"),
    [(None, "onnxruntime"), ("auto", "onnxruntime"), ("torch", "torch"), ("onnxruntime", "onnxruntime")],
)
def test_model_fn_serves_the_engine_clip_engine_names(inference, model_dir, monkeypatch, engine, served):
    if engine is None:
        monkeypatch.delenv("CLIP_ENGINE", raising=False)
    else:
        monkeypatch.setenv("CLIP_ENGINE", engine)
    clip = inference.model_fn(str(model_dir))
    assert clip.engine == served and clip.model_id == "tiny-shapes" and clip.dimension == 64


def test_an_archive_without_onnx_files_serves_with_torch_and_says_so_once(
    inference, model_dir, tmp_path, monkeypatch, caplog
):
    monkeypatch.delenv("CLIP_ENGINE", raising=False)
    with caplog.at_level(logging.WARNING, logger="omnisearch_embed.model"):
        clip = inference.model_fn(str(copy_of(model_dir, tmp_path, onnx=False)))
        embed(inference, clip, "texts", ["a red circle"])
    assert clip.engine == "torch"
    assert [r.message for r in caplog.records].count(
        f"no ONNX files (clip_onnx.json) in {tmp_path / 'model'}: serving with torch"
    ) == 1
    monkeypatch.setenv("CLIP_ENGINE", "onnxruntime")
    with pytest.raises(ValueError, match=r"CLIP_ENGINE=onnxruntime, but .* has no clip_onnx\.json"):
        inference.model_fn(str(tmp_path / "model"))


def test_an_unknown_engine_is_refused(inference, model_dir, monkeypatch):
    monkeypatch.setenv("CLIP_ENGINE", "tensorrt")
    with pytest.raises(ValueError, match=r"CLIP_ENGINE=.tensorrt. is not one of auto, torch, onnxruntime"):
        inference.model_fn(str(model_dir))


def _rewrite(root: Path, name: str, data: bytes) -> None:
    """Replace an ONNX file and record its sha256, as a broken export would."""
    import hashlib

    (root / name).write_bytes(data)
    meta = json.loads((root / "clip_onnx.json").read_text())
    meta["sha256"][name] = hashlib.sha256(data).hexdigest()
    (root / "clip_onnx.json").write_text(json.dumps(meta))


def test_a_corrupt_or_mismatched_onnx_file_fails_at_load_naming_it(inference, model_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("CLIP_ENGINE", raising=False)
    root = copy_of(model_dir, tmp_path)
    (root / "image.onnx").write_bytes((root / "image.onnx").read_bytes()[:-100])
    with pytest.raises(RuntimeError, match=r"image\.onnx is not the file clip_onnx\.json describes"):
        inference.model_fn(str(root))
    _rewrite(root, "image.onnx", b"not a graph")
    with pytest.raises(RuntimeError, match=r"cannot load .*image\.onnx"):
        inference.model_fn(str(root))
    _rewrite(root, "image.onnx", (model_dir / "text.onnx").read_bytes())  # the other tower's graph
    with pytest.raises(RuntimeError, match=r"image\.onnx cannot run"):
        inference.model_fn(str(root))
    (root / "image.onnx").unlink()
    with pytest.raises(RuntimeError, match=r"image\.onnx is missing"):
        inference.model_fn(str(root))
