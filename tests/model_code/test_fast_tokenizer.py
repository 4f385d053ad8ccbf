"""The fast tokenizer gives open_clip's exact token ids, counts and truncation, or falls back to open_clip.

The reference is open_clip's SimpleTokenizer itself (``encode`` and ``__call__``), run on a golden corpus of
the texts where tokenizers tend to part ways, and on seeded random mixtures of the same ingredients.
"""

from __future__ import annotations

from types import ModuleType, SimpleNamespace

import numpy as np
import open_clip
import pytest

from omnisearch_testkit.golden_texts import GOLDEN, random_texts


@pytest.fixture(scope="module")
def tok() -> open_clip.tokenizer.SimpleTokenizer:
    return open_clip.get_tokenizer("ViT-B-32")


@pytest.fixture(scope="module")
def text(inference: ModuleType) -> ModuleType:
    """clip_text.py, the sibling inference.py loaded."""
    return inference._text


def test_the_fast_path_is_available(text: ModuleType, tok) -> None:
    assert text.fast_bpe(tok) is not None  # tokenizers is a dependency of the model code


@pytest.mark.parametrize("corpus", ["golden", "random"])
def test_ids_equal_open_clips(text: ModuleType, tok, corpus: str) -> None:
    texts = GOLDEN if corpus == "golden" else random_texts(1500)
    fast = text.word_bpe(tok).encode(texts)
    for t, ids in zip(texts, fast, strict=True):
        assert ids == tok.encode(t), repr(t)


def test_tokenize_equals_open_clips_call_with_counts_and_truncation(inference: ModuleType, text: ModuleType, tok):
    clip = SimpleNamespace(tokenizer=tok, context_length=77)
    texts = GOLDEN + random_texts(300, seed=1)
    assert text.fast_bpe(tok) is not None
    ids, counts, truncated = inference.tokenize(clip, texts)
    np.testing.assert_array_equal(ids.numpy(), tok(texts).numpy())  # sot/eot and the cut at 77 included
    full = [len(tok.encode(t)) + 2 for t in texts]
    assert counts == [min(n, 77) for n in full]
    assert truncated == [n > 77 for n in full]
    assert truncated[GOLDEN.index("star " * 76)] and not truncated[GOLDEN.index("star " * 75)]
    assert counts[GOLDEN.index("")] == 2 and counts[GOLDEN.index("   ")] == 2


def test_special_token_words_map_to_their_special_ids(text: ModuleType, tok) -> None:
    fast = text.word_bpe(tok)
    texts = ["a cat <end_of_text>", "a plain cat", "<START_OF_TEXT>", "x<end_of_text>y <start_of_text><end_of_text>"]
    ids = fast.encode(texts)
    assert ids[0][-1] == tok.eot_token_id and ids[2] == [tok.sot_token_id]
    assert ids == [tok.encode(t) for t in texts]


def test_without_tokenizers_open_clip_serves(inference: ModuleType, text: ModuleType, tok, monkeypatch) -> None:
    monkeypatch.setattr(text, "Tokenizer", None)
    assert text.fast_bpe(tok) is None
    clip = SimpleNamespace(tokenizer=tok, context_length=77)
    ids, counts, _ = inference.tokenize(clip, GOLDEN)
    np.testing.assert_array_equal(ids.numpy(), tok(GOLDEN).numpy())
    assert counts == [min(len(tok.encode(t)) + 2, 77) for t in GOLDEN]
