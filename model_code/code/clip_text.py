"""The text side: token ids with per-text facts, and the text tower run on the trimmed context.

Ships next to inference.py in code/.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import open_clip
import torch
from open_clip.tokenizer import SimpleTokenizer
from open_clip.transformer import TextTransformer, text_global_pool


def tokenize(clip: Any, texts: Sequence[str]) -> tuple[torch.Tensor, list[int], list[bool]]:
    """Token ids (count x context), tokens read per text, and whether each text was cut to fit."""
    tok, ctx = clip.tokenizer, clip.context_length
    if isinstance(tok, SimpleTokenizer) and tok.reduction_fn is None:
        ids = [[tok.sot_token_id, *tok.encode(t), tok.eot_token_id] for t in texts]
        full = [len(row) for row in ids]
        result = torch.zeros(len(ids), ctx, dtype=torch.long)
        for i, row in enumerate(ids):
            if len(row) > ctx:
                row = [*row[: ctx - 1], tok.eot_token_id]  # what SimpleTokenizer.__call__ does
            result[i, : len(row)] = torch.tensor(row)
        return result, [min(n, ctx) for n in full], [n > ctx for n in full]
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


def encode_text(model: torch.nn.Module, tokens: torch.Tensor, *, trim: bool = True) -> torch.Tensor:
    """Text features, run on the context trimmed to the batch's longest sequence when that is exact.

    The causal mask keeps every position from seeing later ones and pooling reads the EOT position,
    so positions after the last EOT in the batch cannot change any output.
    """
    found = trimmable(model) if trim else None
    if found is None:
        return model.encode_text(tokens)
    tower, pool, eos = found
    ends = tokens.argmax(dim=-1) if pool == "argmax" else (tokens == eos).int().argmax(dim=-1)
    length = int(ends.max()) + 1
    tokens = tokens[:, :length]
    cast = tower.transformer.get_cast_dtype()
    x = tower.token_embedding(tokens).to(cast) + tower.positional_embedding[:length].to(cast)
    x = tower.transformer(x, attn_mask=tower.attn_mask[:length, :length])
    x = text_global_pool(tower.ln_final(x), tokens, pool, eos_token_id=eos)
    proj = tower.text_projection
    if proj is None:
        return x
    return proj(x) if isinstance(proj, torch.nn.Linear) else x @ proj
