"""The bundled model does its job: zero-shot colour x shape on freshly generated images, through inference.py."""

from __future__ import annotations

import random

import pytest

from model_code.tiny_shapes import CHECKPOINT_PATH
from model_code.tiny_shapes.evaluate import HELD_OUT_SEED, evaluate, inference_embedders
from model_code.tiny_shapes.shapes import CLASSES, balanced_set, caption, random_caption, sample
from model_code.tiny_shapes.train import TRAIN_SEED, VALIDATION_SEED

TEST_SEED = 4_242_424  # neither the trainer's, its validation's, nor the evaluation script's default


def test_zero_shot_accuracy_on_fresh_images_is_at_least_90_percent(tiny):
    assert TEST_SEED not in (TRAIN_SEED, VALIDATION_SEED, HELD_OUT_SEED)
    result = evaluate(*inference_embedders(tiny), seed=TEST_SEED, per_class=10)
    assert result["images"] == 10 * len(CLASSES) == 320
    assert result["zero_shot_top1"] >= 0.90, result
    assert result["text_to_image_recall_at_1"] >= 0.80, result


def test_checkpoint_is_small_and_half_precision():
    import torch

    state = torch.load(CHECKPOINT_PATH, map_location="cpu", weights_only=True)
    assert CHECKPOINT_PATH.stat().st_size < 12e6
    assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.float16}


def test_a_seed_names_a_data_set():
    first, again = balanced_set(5, 2), balanced_set(5, 2)
    assert [(s.colour, s.shape, s.size, s.image.tobytes()) for s in first] == [
        (s.colour, s.shape, s.size, s.image.tobytes()) for s in again
    ]
    assert sorted(s.label for s in first) == sorted(list(range(len(CLASSES))) * 2)


@pytest.mark.parametrize("seed", range(5))
def test_captions_name_what_the_image_shows(seed):
    rng = random.Random(seed)
    s = sample(rng)
    text, size = random_caption(s, rng)
    assert s.colour in text and s.shape in text and (size is None or (size == s.size and size in text))
    assert s.image.size == (64, 64) and s.image.mode == "RGB"


def test_articles_follow_the_next_word():
    assert caption("orange", "star", None, "{a} {colour} {shape}") == "an orange star"
    assert caption("orange", "star", "small", "{a} {size} {colour} {shape}") == "a small orange star"
