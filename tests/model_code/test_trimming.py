"""The text tower on the trimmed context gives the untrimmed vectors; towers where padding matters are not trimmed."""

from __future__ import annotations

import json

import open_clip
import pytest
import torch
import torch.nn.functional as F

from model_code.code import clip_embed

SHORT = ["a red circle", "star", "a photo of a small blue star"]
LONG = ["a very long caption about a " + "large green triangle " * 20, "circle " * 90]
MIXED = ["x", *SHORT, LONG[0], "a drawing of a purple square on a plain background", LONG[1]]


def cosines(inference, clip, texts):
    tokens, _, _ = inference.tokenize(clip, texts)
    with torch.inference_mode():
        trimmed = inference.encode_text(clip.model, tokens, trim=True)
        full = clip.model.encode_text(tokens)
    assert trimmed.shape == full.shape
    return F.cosine_similarity(trimmed.float(), full.float(), dim=-1)


@pytest.mark.parametrize("texts", [SHORT, LONG, MIXED], ids=["short", "long", "mixed"])
def test_tiny_shapes_trimmed_equals_untrimmed(inference, tiny, texts):
    assert inference.trimmable(tiny.model) is not None
    assert float(cosines(inference, tiny, texts).min()) >= 0.9999


@pytest.mark.parametrize("texts", [SHORT, MIXED], ids=["short", "mixed"])
def test_vit_b32_trimmed_equals_untrimmed(inference, vit_b32, texts):
    assert float(cosines(inference, vit_b32, texts).min()) >= 0.9999


def test_trimming_really_shortens_the_context(inference, tiny, monkeypatch):
    seen = []
    original = tiny.model.transformer.forward
    monkeypatch.setattr(
        tiny.model.transformer,
        "forward",
        lambda x, attn_mask=None: seen.append(x.shape[1]) or original(x, attn_mask=attn_mask),
    )
    body = json.dumps({"texts": ["a red circle", "a photo of a small blue star"]})
    inference.predict_fn(inference.input_fn(body, "application/json"), tiny)
    assert seen == [9]  # the longest text: start + 7 words + end


def test_each_batch_trims_to_its_own_longest_text(inference, tiny, monkeypatch):
    seen = []
    original = tiny.model.transformer.forward
    monkeypatch.setattr(
        tiny.model.transformer,
        "forward",
        lambda x, attn_mask=None: seen.append(x.shape[1]) or original(x, attn_mask=attn_mask),
    )
    monkeypatch.setattr(clip_embed, "TEXT_BATCH", 2)
    body = json.dumps({"texts": ["star " * 200, "a red circle", "star", "a photo of a star"]})
    inference.predict_fn(inference.input_fn(body, "application/json"), tiny)
    assert seen == [5, 77]  # sorted by length: (star, a red circle) then (a photo of a star, the long one)


def _custom(text_cfg: dict) -> torch.nn.Module:
    cfg = {
        "embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
    }
    model = open_clip.CLIP(
        **cfg, text_cfg={"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1, **text_cfg}
    )
    return model.eval()


@pytest.mark.parametrize(
    "text_cfg", [{"no_causal_mask": True}, {"pool_type": "last"}], ids=["bidirectional", "last-token-pooling"]
)
def test_towers_where_padding_matters_use_the_full_context(inference, text_cfg):
    model = _custom(text_cfg)
    assert inference.trimmable(model) is None
    tokens = open_clip.get_tokenizer("ViT-B-32")(["a red circle", "a star"])
    with torch.inference_mode():
        torch.testing.assert_close(inference.encode_text(model, tokens), model.encode_text(tokens))
