"""The fast tokenizer gives open_clip's exact token ids, counts and truncation, or falls back to open_clip.

The reference is open_clip's SimpleTokenizer itself (``encode`` and ``__call__``), run on a golden corpus of
the texts where tokenizers tend to part ways, and on seeded random mixtures of the same ingredients.
"""

from __future__ import annotations

import random
from types import ModuleType, SimpleNamespace

import numpy as np
import open_clip
import pytest

GOLDEN = [
    "a photo of a cat",
    "",
    # HTML entities, single and double escaped
    "Tom &amp; Jerry",
    "&lt;b&gt;bold&lt;/b&gt; and &quot;quoted&quot; &#39;single&#39;",
    "&amp;lt;double escaped&amp;gt; &amp;amp;",
    "caf&eacute; cr&egrave;me br&ucirc;l&eacute;e &#233;t&#xE9;",
    "non&nbsp;breaking&nbsp;space &#128512; &copy; 2024",
    # mojibake (UTF-8 read as cp1252 / latin-1), which ftfy repairs
    "cafÃ© au lait",
    "Ã¢â‚¬Å“smart quotesÃ¢â‚¬Â and itâ€™s broken",
    "Ð¿Ñ€Ð¸Ð²ÐµÑ‚ Ð¼Ð¸Ñ€",
    # emoji, ZWJ sequences, flags, variation selectors
    "I ❤️ NY 🗽🍎",
    "👩‍👩‍👧‍👦 family 🏳️‍🌈 🇯🇵🇫🇷 👍🏽",
    # CJK
    "一只猫坐在桌子上",
    "東京タワーの夜景、とても綺麗です。",
    "한국어 문장입니다 고양이",
    # right-to-left, and mixed with left-to-right
    "مرحبا بالعالم، قطة على الطاولة",
    "שלום עולם",
    "hello مرحبا 123 עולם world",
    # combining marks, precomposed against decomposed
    "école vs e\u0301cole",
    "Ä A\u0308 ñ n\u0303 Å A\u030a",
    "Z̴̡̢̛a̷̢l̶̨g̸̡o̵͠ text",
    "Ελληνικά και Кириллица",
    # long: more than 77 tokens, and exactly at the edge
    "a photo of " * 40,
    "star " * 75,
    "star " * 76,
    " ".join(f"word{i}" for i in range(120)),
    # empty or whitespace after cleaning
    "   ",
    "\t\n\r  \n",
    "\u3000\u00a0\u2003",
    "&nbsp;",
    "\x00\x01\x02",
    "\u200b",
    # very long words
    "a" * 500,
    "supercalifragilisticexpialidocious" * 20,
    "x" * 3000,
    "🙂" * 200,
    # numbers and punctuation
    "3.14159 is pi!!! 1,000,000 $$$ ??? (555) 123-4567",
    "...---... ### @user #hashtag https://example.com/path?q=1&r=2",
    "100% of 2024's 4K TVs cost $1,299.99; 50/50 odds—maybe…",
    # apostrophes and contractions (CLIP's regex splits 's 't 're 've 'm 'll 'd)
    "don't I'm you're we've they'll she'd it's",
    "DON'T SHOUT, IT'S LOUD",
    "rock 'n' roll, O'Reilly's books, the '90s",
    "don’t and it’s (curly apostrophes)",
    "''' '' ' 's's's 'll'd",
    # special tokens typed in by a caller
    "<start_of_text> hello <end_of_text>",
    "<END_OF_TEXT>",
    "<|endoftext|> <|startoftext|>",
    # odd but real
    "HeLLo WoRLD MiXeD CaSe",
    "\x1b[31mred terminal\x1b[0m text",
    "ﬁne ﬂour, ＡＢＣ１２３ fullwidth",
    "line one\r\nline two\rline three\n",
    "tab\tseparated\tvalues",
    "lone surrogate \ud83d and \udcff",
]

POOLS = [
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "0123456789",
    " .,;:!?'\"()-_/\\&#@$%*+=<>[]{}|~`^",
    "'''''sStTrRvVmMlLdD",
    "     \t\n\u00a0\u3000",
    "àéîõüçñßøåÆŒÿ",
    "\u0300\u0301\u0308\u0303\u030a\u0327",
    "一二三猫犬東京タワーのです한국어",
    "مرحبابالعالم",
    "שלוםעולם",
    "😀❤️🗽👍🏽🇯🇵\u200d\ufe0f",
    "ЀЁЂЃЄЅабвгдежзийкл",
]
ENTITIES = ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;", "&nbsp;", "&eacute;", "&#128512;", "&amp;amp;"]


def random_texts(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(0, 12)):
            if rng.random() < 0.1:
                parts.append(rng.choice(ENTITIES))
            else:
                pool = rng.choice(POOLS)
                parts.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 8))))
        texts.append("".join(parts))
    return texts


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
    fast = text.FastBPE(tok).encode(texts)
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


def test_special_token_texts_take_open_clips_path(text: ModuleType, tok, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = text.FastBPE(tok)
    seen: list[str] = []
    real = tok.encode
    monkeypatch.setattr(tok, "encode", lambda t: seen.append(t) or real(t))
    texts = ["a cat <end_of_text>", "a plain cat", "<START_OF_TEXT>"]
    ids = fast.encode(texts)
    assert seen == ["a cat <end_of_text>", "<START_OF_TEXT>"]
    assert ids[0][-1] == tok.eot_token_id and ids[2] == [tok.sot_token_id]
    assert ids == [real(t) for t in texts]


def test_without_tokenizers_open_clip_serves(inference: ModuleType, text: ModuleType, tok, monkeypatch) -> None:
    monkeypatch.setattr(text, "Tokenizer", None)
    assert text.fast_bpe(tok) is None
    clip = SimpleNamespace(tokenizer=tok, context_length=77)
    ids, counts, _ = inference.tokenize(clip, GOLDEN)
    np.testing.assert_array_equal(ids.numpy(), tok(GOLDEN).numpy())
    assert counts == [min(len(tok.encode(t)) + 2, 77) for t in GOLDEN]
