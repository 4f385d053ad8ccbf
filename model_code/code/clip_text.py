"""The text side: token ids with per-text facts, and the text tower run on the trimmed context.

Ships next to inference.py in code/. open_clip's SimpleTokenizer runs its byte-level BPE in Python, which
bounds text throughput on a GPU; :class:`FastBPE` gives its exact ids with the BPE in HF ``tokenizers``.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np
import open_clip
import torch
from open_clip.tokenizer import SimpleTokenizer
from open_clip.transformer import TextTransformer, text_global_pool

try:
    from tokenizers import Tokenizer, models, pre_tokenizers
except ImportError:  # open_clip's own BPE then serves every text
    Tokenizer = None

if __package__:  # see inference.py: a package in the repository, top-level modules under the toolkit
    from .clip_env import env_bool
else:
    from clip_env import env_bool

# false turns the fast path off (A/B runs); ids are the same either way.
FAST_TOKENIZER = env_bool(os.environ, "CLIP_FAST_TOKENIZER", True)


class FastBPE:
    """SimpleTokenizer.encode's ids, with only the byte-level BPE moved to Rust.

    Texts go through open_clip's own clean-up (ftfy, double HTML unescape, whitespace, lower case) and its
    own word regex, so the words are exactly SimpleTokenizer's; ``tokenizers`` then maps each word's UTF-8
    bytes with the same byte-to-unicode table and applies the same merges, in rank order, to the same vocab.
    A text with a special-token word (``<end_of_text>`` typed in by a caller) takes open_clip's path, which
    maps it to the special id, as the BPE model here would not.
    """

    def __init__(self, tok: SimpleTokenizer) -> None:
        self.tok = tok
        merges = sorted(tok.bpe_ranks, key=tok.bpe_ranks.__getitem__)
        self._bpe = Tokenizer(models.BPE(vocab=dict(tok.encoder), merges=merges, end_of_word_suffix="</w>"))
        self._bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
        self._special = frozenset(tok.decoder[i] for i in tok.all_special_ids)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        words = [self.tok.pat.findall(self.tok.clean_fn(text)) for text in texts]
        out: list[list[int]] = [[] for _ in words]
        fast = []
        for i, row in enumerate(words):
            if self._special.isdisjoint(row):
                if row:  # empty after cleaning: no ids
                    fast.append(i)
            else:
                out[i] = self.tok.encode(texts[i])
        if fast:
            encodings = self._bpe.encode_batch_fast(
                [words[i] for i in fast], is_pretokenized=True, add_special_tokens=False
            )
            for i, encoding in zip(fast, encodings, strict=True):
                out[i] = encoding.ids
        return out


_fast: weakref.WeakKeyDictionary[SimpleTokenizer, FastBPE] = weakref.WeakKeyDictionary()
_fast_lock = threading.Lock()


def fast_bpe(tok: SimpleTokenizer) -> FastBPE | None:
    """The FastBPE for ``tok``, built once (~0.1 s); None when ``tokenizers`` is missing or turned off."""
    if Tokenizer is None or not FAST_TOKENIZER:
        return None
    with _fast_lock:
        if tok not in _fast:
            _fast[tok] = FastBPE(tok)
        return _fast[tok]


def encode_ids(tok: SimpleTokenizer, texts: Sequence[str]) -> list[list[int]]:
    """``tok.encode`` for each text, without start and end tokens."""
    fast = fast_bpe(tok)
    return fast.encode(texts) if fast is not None else [tok.encode(text) for text in texts]


def tokenize(clip: Any, texts: Sequence[str]) -> tuple[torch.Tensor, list[int], list[bool]]:
    """Token ids (count x context), tokens read per text, and whether each text was cut to fit."""
    tok, ctx = clip.tokenizer, clip.context_length
    if isinstance(tok, SimpleTokenizer) and tok.reduction_fn is None:
        ids = [[tok.sot_token_id, *row, tok.eot_token_id] for row in encode_ids(tok, texts)]
        full = [len(row) for row in ids]
        result = np.zeros((len(ids), ctx), dtype=np.int64)
        for i, row in enumerate(ids):
            if len(row) > ctx:
                row = [*row[: ctx - 1], tok.eot_token_id]  # what SimpleTokenizer.__call__ does
            result[i, : len(row)] = row
        return torch.from_numpy(result), [min(n, ctx) for n in full], [n > ctx for n in full]
    result = tok(list(texts))  # other tokenizers: count the non-padding positions
    pad = getattr(getattr(tok, "tokenizer", None), "pad_token_id", 0) or 0
    counts = [int((row != pad).sum()) for row in result]
    return result, counts, [n >= ctx for n in counts]


def trimmable(model: torch.nn.Module) -> tuple[Any, str, int | None] | None:
    """(tower, pool type, eos id) when the text tower is open_clip's causal transformer pooling at EOT."""
    if isinstance(model, open_clip.CLIP):
        tower, pool, eos = model, model.text_pool_type, model.text_eos_id
    elif isinstance(getattr(model, "text", None), TextTransformer) and model.text.cls_emb is None:
        if model.text.use_pad_mask:
            return None
        tower, pool, eos = model.text, model.text.pool_type, model.text.eos_id
    else:
        return None
    if tower.attn_mask is None or pool not in ("argmax", "eos"):
        return None  # bidirectional or last-token pooling: padding matters, keep the full context
    return tower, pool, eos


def trim_length(tokens: torch.Tensor, pool: str, eos: int | None) -> int:
    """Positions up to the batch's last EOT: all a causal tower pooling at EOT reads."""
    ends = tokens.argmax(dim=-1) if pool == "argmax" else (tokens == eos).int().argmax(dim=-1)
    return int(ends.max()) + 1


def trimmed_features(tower: Any, pool: str, eos: int | None, tokens: torch.Tensor) -> torch.Tensor:
    """The text tower on ``tokens`` as given, however many positions they have (traced as is for ONNX)."""
    length = tokens.shape[1]
    cast = tower.transformer.get_cast_dtype()
    x = tower.token_embedding(tokens).to(cast) + tower.positional_embedding[:length].to(cast)
    x = tower.transformer(x, attn_mask=tower.attn_mask[:length, :length])
    x = text_global_pool(tower.ln_final(x), tokens, pool, eos_token_id=eos)
    proj = tower.text_projection
    if proj is None:
        return x
    return proj(x) if isinstance(proj, torch.nn.Linear) else x @ proj


def encode_text(model: torch.nn.Module, tokens: torch.Tensor, *, trim: bool = True) -> torch.Tensor:
    """Text features, run on the context trimmed to the batch's longest sequence when that is exact.

    The causal mask keeps every position from seeing later ones and pooling reads the EOT position,
    so positions after the last EOT in the batch cannot change any output.
    """
    found = trimmable(model) if trim else None
    if found is None:
        return model.encode_text(tokens)
    tower, pool, eos = found
    return trimmed_features(tower, pool, eos, tokens[:, : trim_length(tokens, pool, eos)])
