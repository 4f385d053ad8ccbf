"""CLIP's token ids without torch or open_clip: the byte-level BPE in HF ``tokenizers``, the clean-up in Python.

Ships next to inference.py in code/. open_clip's SimpleTokenizer cleans a text (ftfy, double HTML unescape,
whitespace, lower case), splits it into words with one regex, then runs a byte-level BPE over each word's
UTF-8 bytes. :class:`WordBPE` does the same: the clean-up and the regex are open_clip's own rules, the BPE is a
``tokenizers`` model with SimpleTokenizer's vocab and merges (clip_export.py saves it as ``tokenizer.json``
beside the ONNX towers). The torch path builds the same class from open_clip's tokenizer (clip_text.py), so
both paths give the ids SimpleTokenizer gives.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

TOKENIZER_FILE = "tokenizer.json"
# The words open_clip's regex splits a cleaned text into, after its special tokens (SimpleTokenizer.pat).
WORD_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


def _basic_clean(text: str) -> str:
    import ftfy

    return html.unescape(html.unescape(ftfy.fix_text(text))).strip()


def _whitespace_clean(text: str) -> str:
    return " ".join(text.split())


CLEANERS: dict[str, Callable[[str], str]] = {
    "lower": lambda text: _whitespace_clean(_basic_clean(text)).lower(),
    "whitespace": lambda text: _whitespace_clean(_basic_clean(text)),
}


class WordBPE:
    """SimpleTokenizer.encode's ids for many texts: words by open_clip's rules, BPE by ``tokenizers``.

    A word that is a special token (``<end_of_text>`` typed in by a caller) maps to its special id, as in
    open_clip; every other word goes through the BPE, the texts of one call in one batch.
    """

    def __init__(self, bpe: Any, specials: dict[str, int], clean: str) -> None:
        import regex

        if clean not in CLEANERS:
            raise ValueError(f"text clean-up {clean!r} is not one of {sorted(CLEANERS)}")
        self.bpe, self.specials, self.clean = bpe, dict(specials), clean
        self._clean_fn = CLEANERS[clean]
        special = "|".join(regex.escape(word) for word in self.specials)
        self._words = regex.compile(f"{special}|{WORD_PATTERN}" if special else WORD_PATTERN, regex.IGNORECASE)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Ids of each text, without start and end tokens."""
        words = [self._words.findall(self._clean_fn(text)) for text in texts]
        flat = [w for row in words for w in row if w not in self.specials]
        encoded = iter(self.bpe.encode_batch_fast(flat, add_special_tokens=False) if flat else ())
        out: list[list[int]] = []
        for row in words:
            ids: list[int] = []
            for word in row:
                ids.extend([self.specials[word]] if word in self.specials else next(encoded).ids)
            out.append(ids)
        return out


class TextTokens:
    """Texts to CLIP's fixed-length id rows: start token, ids, end token, zero padding, cut to the context."""

    def __init__(self, words: WordBPE, sot: int, eot: int, context_length: int) -> None:
        self.words, self.sot, self.eot, self.context_length = words, sot, eot, context_length

    def __call__(self, texts: Sequence[str]) -> tuple[np.ndarray, list[int], list[bool]]:
        """(count x context int64 ids, token positions read per text, whether each text was cut to fit)."""
        return pad_rows(self.words.encode(texts), self.sot, self.eot, self.context_length)

    def describe(self) -> dict[str, Any]:
        """What :func:`load` needs besides ``tokenizer.json`` (clip_onnx.json's ``tokenizer``)."""
        return {"file": TOKENIZER_FILE, "sot": self.sot, "eot": self.eot, "specials": self.words.specials,
                "clean": self.words.clean}  # fmt: skip

    def save(self, directory: Path) -> bytes:
        """Write ``tokenizer.json`` into ``directory``; its bytes, for the metadata's sha256."""
        path = Path(directory) / TOKENIZER_FILE
        self.words.bpe.save(str(path))
        return path.read_bytes()


def pad_rows(rows: list[list[int]], sot: int, eot: int, context: int) -> tuple[np.ndarray, list[int], list[bool]]:
    """SimpleTokenizer.__call__'s rows: a text over the context keeps its first ids and ends with the end token."""
    full = [len(row) + 2 for row in rows]
    result = np.zeros((len(rows), context), dtype=np.int64)
    for i, row in enumerate(rows):
        ids = [sot, *row, eot]
        if len(ids) > context:
            ids = [*ids[: context - 1], eot]
        result[i, : len(ids)] = ids
    return result, [min(n, context) for n in full], [n > context for n in full]


def load(directory: Path, described: dict[str, Any], context_length: int) -> TextTokens:
    """The tokenizer clip_export.py saved beside the towers."""
    from tokenizers import Tokenizer

    bpe = Tokenizer.from_file(str(Path(directory) / described["file"]))
    words = WordBPE(bpe, {str(k): int(v) for k, v in described["specials"].items()}, described["clean"])
    return TextTokens(words, int(described["sot"]), int(described["eot"]), context_length)
