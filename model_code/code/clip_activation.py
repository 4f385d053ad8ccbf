"""Which activation a weights file was trained with: QuickGELU (OpenAI's CLIP) or GELU (open_clip's base configs).

Ships next to inference.py in code/. Built with the wrong one, OpenAI's weights load without an error and give
different vectors. A pretrained tag says which (open_clip's table), and a statement that contradicts it is
refused; a file does not say. For a file the answer is, in order: the model's own config
(``ViT-B-32-quickgelu``), the caller's statement (``quick_gelu``, the archive manifest's, or
``CLIP_QUICK_GELU``), the file being one of the OpenAI checkpoints open_clip lists (by sha256); a model with
a ``-quickgelu`` twin and none of these is refused rather than guessed.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from pathlib import Path

import open_clip

if __package__:  # see inference.py: a package in the repository, top-level modules under the toolkit
    from .clip_archive import file_sha256
    from .clip_env import env_bool
else:
    from clip_archive import file_sha256
    from clip_env import env_bool

_logger = logging.getLogger("omnisearch_embed.model")
_SHA256_IN_URL = re.compile(r"/([0-9a-f]{64})/")


@functools.cache
def known_checkpoints() -> dict[str, str]:
    """sha256 -> "model/tag" of the QuickGELU checkpoints whose URLs carry their hash (OpenAI's own files)."""
    known = {}
    for model, tag in open_clip.list_pretrained():
        cfg = open_clip.get_pretrained_cfg(model, tag)
        found = _SHA256_IN_URL.search(cfg.get("url") or "")
        if found and cfg.get("quick_gelu"):
            known.setdefault(found.group(1), f"{model}/{tag}")
    return known


def stated_by_env() -> bool | None:
    if not os.environ.get("CLIP_QUICK_GELU", "").strip():
        return None  # not stated
    return env_bool(os.environ, "CLIP_QUICK_GELU", False)


def quick_gelu_for(model_name: str, pretrained: str, stated: bool | None = None) -> bool:
    """Whether to build ``model_name`` with QuickGELU for ``pretrained`` (tag, file path, or "" for random).

    Serving and packaging both ask here, so an archive is never built on an answer serving would refuse.
    """
    setting = f"quick_gelu={stated}" if stated is not None else _env_setting()
    stated = stated_by_env() if stated is None else stated
    config = open_clip.get_model_config(model_name) or {}
    tagged = open_clip.get_pretrained_cfg(model_name, pretrained) if pretrained else {}
    if tagged and not Path(pretrained).is_file():
        own = bool(tagged.get("quick_gelu") or config.get("quick_gelu"))
        if stated is not None and stated != own:
            raise ValueError(
                f"{model_name} {pretrained!r} is trained {'with' if own else 'without'} QuickGELU, but {setting} "
                f"states {'QuickGELU' if stated else 'GELU'}: built that way it gives wrong vectors. A tag knows its "
                "own activation: drop the statement (unset CLIP_QUICK_GELU, leave out --quick-gelu/--no-quick-gelu)"
            )
        return own
    if config.get("quick_gelu"):
        return True
    if not pretrained or not Path(pretrained).is_file():
        return bool(stated)  # random weights, or a tag open_clip does not list (its factory refuses that)
    if stated is not None:
        return stated
    twin = f"{model_name}-quickgelu"
    if twin not in open_clip.list_models():
        return False  # no QuickGELU variant of this architecture exists: nothing to confuse
    known = known_checkpoints().get(file_sha256(pretrained))
    if known is not None:
        _logger.info("%s is %s's checkpoint: building %s with QuickGELU", pretrained, known, model_name)
        return True
    raise ValueError(
        f"{Path(pretrained).name} does not say which activation {model_name} was trained with: OpenAI's weights "
        f"need QuickGELU and give wrong vectors without it. Name the model {twin} for QuickGELU weights, or state "
        "it (package_model.py --quick-gelu / --no-quick-gelu, or CLIP_QUICK_GELU=true|false)"
    )


def _env_setting() -> str:
    return f"CLIP_QUICK_GELU={os.environ.get('CLIP_QUICK_GELU', '').strip()}"
