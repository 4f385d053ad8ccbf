"""The torch side of texts: token ids with per-text facts, and the text tower run on the trimmed context.

Ships next to inference.py in code/. open_clip's SimpleTokenizer runs its byte-level BPE in Python, which
bounds text throughput on a GPU; :func:`word_bpe` gives its exact ids with clip_tokens.WordBPE, the BPE in HF
``tokenizers`` (the same class serves the torch-free path from the exported ``tokenizer.json``).
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Sequence
from typing import Any

import open_clip
import torch
from open_clip.tokenizer import SimpleTokenizer
from open_clip.transformer import TextTransformer, text_global_pool

try:
    from tokenizers import Tokenizer, models, pre_tokenizers
except ImportError:  # open_clip's own BPE then serves every text
    Tokenizer = None

if __package__:  # see inference.py: a package in the repository, top-level modules under the toolkit
    from . import clip_onnx as _onnx
    from . import clip_tokens as _tokens
    from .clip_env import env_bool
else:
    import clip_onnx as _onnx
    import clip_tokens as _tokens
    from clip_env import env_bool

# false turns the fast path off (A/B runs); ids are the same either way.
FAST_TOKENIZER = env_bool(os.environ, "CLIP_FAST_TOKENIZER", True)
_CLEAN_NAMES = {"_clean_lower": "lower", "_clean_whitespace": "whitespace"}  # open_clip's clean_fn, by name


def word_bpe(tok: SimpleTokenizer) -> _tokens.WordBPE | None:
    """clip_tokens.WordBPE with ``tok``'s vocab, merges, specials and clean-up; None where it cannot be exact.

    The BPE is a ``tokenizers`` model over each word's UTF-8 bytes with the same byte-to-unicode table and the
    same merges in rank order, so the ids are SimpleTokenizer's; a clean-up clip_tokens.py does not have
    (``canonicalize``) keeps open_clip's Python BPE.
    """
    clean = _CLEAN_NAMES.get(getattr(tok.clean_fn, "__name__", ""))
    if Tokenizer is None or clean is None or tok.reduction_fn is not None:
        return None
    merges = sorted(tok.bpe_ranks, key=tok.bpe_ranks.__getitem__)
    bpe = Tokenizer(models.BPE(vocab=dict(tok.encoder), merges=merges, end_of_word_suffix="</w>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    return _tokens.WordBPE(bpe, {tok.decoder[i]: i for i in tok.all_special_ids}, clean)


_fast: weakref.WeakKeyDictionary[SimpleTokenizer, _tokens.WordBPE | None] = weakref.WeakKeyDictionary()
_fast_lock = threading.Lock()


def fast_bpe(tok: SimpleTokenizer) -> _tokens.WordBPE | None:
    """The WordBPE for ``tok``, built once (~0.1 s); None when ``tokenizers`` is missing or turned off."""
    if Tokenizer is None or not FAST_TOKENIZER:
        return None
    with _fast_lock:
        if tok not in _fast:
            _fast[tok] = word_bpe(tok)
        return _fast[tok]


def encode_ids(tok: SimpleTokenizer, texts: Sequence[str]) -> list[list[int]]:
    """``tok.encode`` for each text, without start and end tokens."""
    fast = fast_bpe(tok)
    return fast.encode(texts) if fast is not None else [tok.encode(text) for text in texts]


def text_tokens(clip: Any) -> _tokens.TextTokens | None:
    """The model's tokenizer as clip_tokens.TextTokens (what an export saves); None where clip_tokens cannot."""
    tok = clip.tokenizer
    words = word_bpe(tok) if isinstance(tok, SimpleTokenizer) else None
    return None if words is None else _tokens.TextTokens(words, tok.sot_token_id, tok.eot_token_id, clip.context_length)


def tokenize(clip: Any, texts: Sequence[str]) -> tuple[torch.Tensor, list[int], list[bool]]:
    """Token ids (count x context), tokens read per text, and whether each text was cut to fit."""
    tok, ctx = clip.tokenizer, clip.context_length
    if isinstance(tok, SimpleTokenizer) and tok.reduction_fn is None:
        ids, counts, truncated = _tokens.pad_rows(encode_ids(tok, texts), tok.sot_token_id, tok.eot_token_id, ctx)
        return torch.from_numpy(ids), counts, truncated
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
    """Positions up to the batch's last EOT (clip_onnx.trim_length on the tensor's values)."""
    return _onnx.trim_length(tokens.cpu().numpy(), pool, eos)


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
