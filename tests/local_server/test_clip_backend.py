"""LocalClipBackend: the Backend protocol over inference.py's own functions, and the container path (invoke)."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest

from local_server.clip_backend import LocalClipBackend
from omnisearch_embed.backends.base import Backend
from omnisearch_embed.embeddings import SERVICE_LOCAL, Embeddings
from omnisearch_embed.errors import InvalidInputError, PayloadTooLargeError, UnprocessableError
from omnisearch_embed.settings import model_id_for
from omnisearch_testkit.images import image_bytes, png_claiming


def test_it_is_a_backend_serving_tiny_shapes(tiny):
    assert isinstance(tiny, Backend)
    assert (tiny.model_id, tiny.service, tiny.dimension) == ("tiny-shapes", SERVICE_LOCAL, 64)
    health = tiny.health()
    assert {key: health.pop(key) for key in ("status", "service", "model", "dimension", "device")} == {
        "status": "ok",
        "service": "local",
        "model": "tiny-shapes",
        "dimension": 64,
        "device": "cpu",
    }
    # what serves is the host's: bf16 on OpenVINO where the CPU has it and the vectors pass (test_health_precision)
    assert (health["engine"], health["precision"]) in {("onnxruntime", "fp32"), ("openvino", "bf16")}


def test_embed_texts_carries_vectors_and_token_facts(tiny):
    result = tiny.embed_texts(["a red circle", "circle " * 90])
    assert isinstance(result, Embeddings) and result.service == "local" and result.model == "tiny-shapes"
    assert result.count == 2 and result.dimension == 64
    assert result.truncated == [False, True] and result.tokens == [5, 77]
    np.testing.assert_allclose(np.linalg.norm(result.vectors, axis=1), 1, atol=1e-5)
    unnormalised = tiny.embed_texts(["a red circle"], normalize=False).vectors[0]
    assert abs(np.linalg.norm(unnormalised) - 1) > 1e-3


def test_embed_images_takes_raw_file_bytes(tiny):
    result = tiny.embed_images([image_bytes("PNG"), image_bytes("JPEG", (120, 80))])
    assert result.count == 2 and result.truncated is None and result.tokens is None
    np.testing.assert_allclose(np.linalg.norm(result.vectors, axis=1), 1, atol=1e-5)


def test_empty_batches_give_empty_embeddings(tiny):
    assert tiny.embed_texts([]).count == 0 and tiny.embed_images([]).count == 0


def test_same_vectors_as_the_container_path(tiny):
    texts = ["a photo of a small pink triangle", "a cyan star"]
    raw, content_type = tiny.invoke(json.dumps({"texts": texts}).encode(), "application/json", "application/json")
    doc = json.loads(raw)
    assert content_type == "application/json" and doc["model"] == "tiny-shapes" and doc["tokens"] == [9, 6]
    np.testing.assert_array_equal(np.float32(doc["embeddings"]), np.float32(tiny.embed_texts(texts).vectors))


def test_invoke_answers_npy_for_a_raw_image(tiny):
    png = image_bytes()
    raw, content_type = tiny.invoke(png, "image/png", "application/x-npy")
    matrix = np.load(io.BytesIO(raw), allow_pickle=False)
    assert content_type == "application/x-npy" and matrix.shape == (1, 64)
    np.testing.assert_array_equal(matrix[0], np.float32(tiny.embed_images([png]).vectors[0]))


def test_invoke_refuses_bad_input_as_the_container_does(tiny):
    with pytest.raises(ValueError, match="unsupported content type") as caught:
        tiny.invoke(b"x", "application/xml", "application/json")
    assert caught.value.status_code == 415
    body = json.dumps({"images": [base64.b64encode(b"junk").decode()]}).encode()
    with pytest.raises(ValueError, match=r"images\[0\] is not a readable image"):
        tiny.invoke(body, "application/json", "application/json")


@pytest.mark.parametrize(
    ("data", "error", "code"),
    [
        (b"not an image", UnprocessableError, "invalid_image"),
        (png_claiming(7000, 7000), PayloadTooLargeError, "image_too_many_pixels"),
    ],
)
def test_bad_images_raise_api_errors(tiny, data, error, code):
    with pytest.raises(error) as caught:
        tiny.embed_images([image_bytes(), data])
    assert caught.value.code == code and "images[1]" in caught.value.message


def test_model_ids():
    assert model_id_for("tiny-shapes", "") == "tiny-shapes"
    assert model_id_for("ViT-B-32", "") == "ViT-B-32/random"
    assert model_id_for("ViT-B-32", "openai") == "ViT-B-32/openai"
    assert model_id_for("ViT-B-32", "/data/ckpt/vit.pt") == "ViT-B-32/vit.pt"


def test_unknown_models_fail_with_a_clear_message():
    with pytest.raises(ValueError, match="cannot load CLIP model 'no-such-model'"):
        LocalClipBackend("no-such-model")


def test_invalid_input_maps_to_400(tiny, monkeypatch):
    inference = tiny._inference
    monkeypatch.setattr(inference, "predict_fn", lambda *_: (_ for _ in ()).throw(inference.InputError("nope")))
    with pytest.raises(InvalidInputError, match="nope"):
        tiny.embed_texts(["a"])


def test_on_the_cpu_onnx_runtime_serves_an_export_made_once_and_reused(tmp_path, monkeypatch, tiny):
    from model_code.code import inference

    monkeypatch.setenv("CLIP_ONNX_CACHE", str(tmp_path))
    monkeypatch.delenv("CLIP_ENGINE", raising=False)
    first = LocalClipBackend("tiny-shapes")
    assert [p.name for p in tmp_path.iterdir()] == [next(tmp_path.iterdir()).name]  # one export, no staging left
    texts = ["a red circle", "a photo of a small blue star"]

    def no_torch_model(*args, **kwargs):
        raise AssertionError("the cached export should serve without building the torch model")

    monkeypatch.setattr(inference, "load_model", no_torch_model)
    again = LocalClipBackend("tiny-shapes")
    assert again.health()["engine"] == "onnxruntime"
    np.testing.assert_array_equal(
        np.float32(again.embed_texts(texts).vectors), np.float32(first.embed_texts(texts).vectors)
    )
    np.testing.assert_allclose(
        np.float32(first.embed_texts(texts).vectors), np.float32(tiny.embed_texts(texts).vectors)
    )


def test_clip_engine_torch_serves_open_clips_forward_pass_at_the_same_vectors(monkeypatch, tiny):
    monkeypatch.setenv("CLIP_ENGINE", "torch")
    eager = LocalClipBackend("tiny-shapes")
    assert eager.health()["engine"] == "torch"
    texts, images = ["a red circle", "circle " * 90], [image_bytes("PNG"), image_bytes("JPEG", (120, 80))]
    for ours, reference in (
        (tiny.embed_texts(texts), eager.embed_texts(texts)),
        (tiny.embed_images(images), eager.embed_images(images)),
    ):
        cosines = (np.float32(ours.vectors) * np.float32(reference.vectors)).sum(axis=1)
        assert cosines.min() >= 0.9999


def test_a_model_onnx_cannot_express_is_served_by_torch_unless_onnxruntime_is_asked_for(tmp_path, monkeypatch, caplog):
    from model_code.code import clip_export, clip_onnx

    def refuse(clip, directory):
        raise clip_onnx.OnnxModelError("cannot export the tokens tower to ONNX: an operator it lacks")

    monkeypatch.setenv("CLIP_ONNX_CACHE", str(tmp_path))
    monkeypatch.setattr(clip_export, "export", refuse)
    monkeypatch.delenv("CLIP_ENGINE", raising=False)
    backend = LocalClipBackend("tiny-shapes")
    assert backend.health()["engine"] == "torch" and backend.embed_texts(["a red circle"]).count == 1
    assert "ONNX Runtime cannot serve tiny-shapes (cannot export the tokens tower" in caplog.text
    assert not list(tmp_path.iterdir())  # nothing half-written is left for the next start
    monkeypatch.setenv("CLIP_ENGINE", "onnxruntime")
    with pytest.raises(ValueError, match=r"cannot load CLIP model 'tiny-shapes'.*an operator it lacks"):
        LocalClipBackend("tiny-shapes")
