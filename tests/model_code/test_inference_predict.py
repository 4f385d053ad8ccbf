"""model_fn and predict_fn on the bundled tiny-shapes model and on ViT-B-32 with random weights."""

from __future__ import annotations

import base64
import io
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from model_code.code import clip_embed
from model_code.tiny_shapes import CHECKPOINT_PATH, CONFIG_PATH
from omnisearch_embed.settings import model_id_for
from omnisearch_testkit.images import animated, image_bytes, png_claiming, truncated_png


def embeddings(raw: bytes) -> np.ndarray:
    return np.asarray(json.loads(raw)["embeddings"], dtype=np.float32)


def test_texts_are_unit_vectors_unless_asked_otherwise(serve):
    unit = embeddings(serve({"texts": ["a red circle", "a green square"]})[0])
    raw = embeddings(serve({"texts": ["a red circle", "a green square"], "normalize": False})[0])
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1, atol=1e-5)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1, atol=1e-3)
    np.testing.assert_allclose(raw / np.linalg.norm(raw, axis=1, keepdims=True), unit, atol=1e-6)


def test_long_texts_are_truncated_and_reported(serve):
    doc = json.loads(serve({"texts": ["star " * 100, "a red circle", "star " * 75]})[0])
    # 100 words + start + end = 102 tokens, cut to the 77-token context; 75 words + 2 = 77 fit exactly.
    assert doc["truncated"] == [True, False, False] and doc["tokens"] == [77, 5, 77]


def test_tokens_match_the_models_own_tokenizer(inference, tiny):
    texts = ["a photo of a small blue star!!", "", "Ünïcödé  spaces   and CAPS", "a " * 80]
    ids, counts, truncated = inference.tokenize(tiny, texts)
    np.testing.assert_array_equal(ids.numpy(), tiny.tokenizer(texts).numpy())
    assert counts == [min(77, len(tiny.tokenizer.encode(t)) + 2) for t in texts]
    assert counts[1] == 2 and counts[3] == 77 and truncated == [False, False, False, True]
    assert all(int(row[n - 1]) == tiny.tokenizer.eot_token_id for row, n in zip(ids, counts, strict=True))


def test_raw_image_and_json_base64_give_the_same_vector(serve):
    png = image_bytes(size=(40, 30))
    raw = embeddings(serve(png, "image/png")[0])
    via_json = embeddings(serve({"images": [base64.b64encode(png).decode()]})[0])
    assert raw.shape == (1, 64)
    np.testing.assert_array_equal(raw, via_json)


def test_image_batches_keep_order_across_batch_boundaries(serve, inference, monkeypatch):
    images = [image_bytes(colour=(40 * i, 200 - 30 * i, 90)) for i in range(5)]
    body = {"images": [base64.b64encode(i).decode() for i in images]}
    whole = embeddings(serve(body)[0])
    monkeypatch.setattr(clip_embed, "IMAGE_BATCH", 2)
    np.testing.assert_allclose(embeddings(serve(body)[0]), whole, atol=1e-6)
    one = embeddings(serve(images[3], "image/png")[0])
    np.testing.assert_allclose(whole[3], one[0], atol=1e-6)


def test_text_batches_keep_order_across_batch_boundaries(serve, inference, monkeypatch):
    texts = ["a red circle", "star " * 30, "a photo of a small pink triangle", "x", "a large cyan square"]
    whole = embeddings(serve({"texts": texts})[0])
    monkeypatch.setattr(clip_embed, "TEXT_BATCH", 2)
    np.testing.assert_allclose(embeddings(serve({"texts": texts})[0]), whole, atol=1e-5)


def test_animated_gif_uses_its_first_frame(serve):
    first = io.BytesIO()
    gif = animated("GIF", frames=3)
    Image.open(io.BytesIO(gif)).convert("RGB").save(first, "PNG")  # PIL opens at frame 0
    np.testing.assert_allclose(
        embeddings(serve(gif, "image/gif")[0]), embeddings(serve(first.getvalue(), "image/png")[0]), atol=1e-6
    )


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK"])
def test_any_colour_mode_is_converted_to_rgb(serve, mode):
    image = Image.new("RGB", (32, 32), (200, 30, 30)).convert(mode)
    out = io.BytesIO()
    image.save(out, "JPEG" if mode == "CMYK" else "PNG")
    assert embeddings(serve(out.getvalue(), "image/png")[0]).shape == (1, 64)


@pytest.mark.parametrize(
    ("data", "code", "words"),
    [
        (b"definitely not an image", "invalid_image", "images[0] is not a readable image"),
        (truncated_png(), "invalid_image", "images[0] is not a readable image"),
        (png_claiming(7000, 7000), "image_too_many_pixels", "7000x7000 pixels"),
    ],
)
def test_unusable_images_are_refused_with_their_index(serve, inference, data, code, words):
    with pytest.raises(inference.InputError) as caught:
        serve(data, "image/png")
    assert caught.value.code == code and words in str(caught.value)


def test_a_bad_image_in_a_batch_names_its_position(serve, inference):
    body = {"images": [base64.b64encode(image_bytes()).decode(), base64.b64encode(b"junk").decode()]}
    with pytest.raises(inference.InputError, match=r"images\[1\]"):
        serve(body)


def test_vectors_are_deterministic(inference, tiny):
    req = inference.input_fn(json.dumps({"texts": ["a yellow star"]}), "application/json")
    np.testing.assert_array_equal(inference.predict_fn(req, tiny).vectors, inference.predict_fn(req, tiny).vectors)


def test_model_fn_reads_a_folder_with_config_and_weights(inference, tiny, tmp_path):
    shutil.copy(CONFIG_PATH, tmp_path / CONFIG_PATH.name)
    shutil.copy(CHECKPOINT_PATH, tmp_path / CHECKPOINT_PATH.name)
    clip = inference.model_fn(str(tmp_path))
    req = inference.input_fn(b'{"texts": ["a red circle"]}', "application/json")
    assert clip.model_id == "tiny-shapes" and clip.device.type == "cpu" and clip.dtype.is_floating_point
    np.testing.assert_allclose(
        inference.predict_fn(req, clip).vectors, inference.predict_fn(req, tiny).vectors, atol=1e-6
    )


def test_model_fn_without_model_files_uses_the_environment(inference, monkeypatch, tmp_path):
    monkeypatch.setenv("CLIP_MODEL", "RN50")
    monkeypatch.setenv("CLIP_PRETRAINED", "")
    clip = inference.model_fn(str(tmp_path))
    assert clip.model_id == "RN50/random" and clip.dimension == 1024


def test_tiny_shapes_says_it_is_a_demo_model(inference, caplog):
    with caplog.at_level("WARNING", logger="omnisearch_embed.model"):
        inference.load_model("tiny-shapes", str(CHECKPOINT_PATH), device="cpu", config_path=CONFIG_PATH)
    assert "not a general-purpose CLIP" in caplog.text


@pytest.mark.parametrize(
    ("model", "pretrained"), [("ViT-B-32", "openai"), ("ViT-B-32", "/models/vit.pt"), ("tiny-shapes", "/x/t.pt")]
)
def test_model_ids_agree_with_the_core(inference, model, pretrained):
    assert inference.model_id_for(model, pretrained) == model_id_for(model, pretrained)


def test_vit_b32_random_weights_give_512_d_unit_vectors(inference, vit_b32):
    texts = inference.predict_fn(
        inference.input_fn(b'{"texts": ["a dog", "a cat on a mat"]}', "application/json"), vit_b32
    )
    images = inference.predict_fn(inference.input_fn(image_bytes("JPEG", (300, 200)), "image/jpeg"), vit_b32)
    assert vit_b32.model_id == "ViT-B-32/random" and vit_b32.context_length == 77
    assert texts.vectors.shape == (2, 512) and images.vectors.shape == (1, 512)
    np.testing.assert_allclose(np.linalg.norm(np.vstack([texts.vectors, images.vectors]), axis=1), 1, atol=1e-5)
    assert texts.tokens == [4, 7] and texts.truncated == [False, False]


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_threaded_pixels_equal_open_clips_preprocess(inference, vit_b32, fmt):
    data = [image_bytes(fmt, (300, 200), (200, 40, 90)), image_bytes(fmt, (50, 120), (10, 220, 30))]
    assert vit_b32.pil_stage is not None  # the split path is the one under test
    ours = inference._images.pixels([inference._inputs.prepare(i, d, vit_b32) for i, d in enumerate(data)], vit_b32)
    theirs = torch.stack([vit_b32.preprocess(inference.decode_image(i, d)) for i, d in enumerate(data)])
    assert ours.shape == (2, 3, 224, 224)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)


def test_pipelines_open_clip_cannot_split_run_whole(inference, tiny, monkeypatch):
    png = image_bytes(size=(80, 50))
    req = inference.input_fn(png, "image/png")
    split = inference.predict_fn(req, tiny).vectors
    monkeypatch.setattr(tiny, "pil_stage", None)
    np.testing.assert_allclose(inference.predict_fn(req, tiny).vectors, split, atol=1e-6)
