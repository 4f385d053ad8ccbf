"""The golden text corpus: the texts where tokenizers tend to part ways, and seeded random mixtures of them.

Used by the fast tokenizer's tests (ids against open_clip's) and by bench/precision_fidelity.py (vectors of
reduced-precision models against fp32).
"""

from __future__ import annotations

import random

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
