"""How an error names the caller's item (``texts[3]``, ``input[2]``, ``labels[7]``), whichever check found it.

A call to the backend may carry only some of the caller's items (the images of a mixed batch, the labels not
yet cached); the names still point at the caller's list, so the caller can find the item it must fix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from omnisearch_embed.errors import EmbedError

Namer = Callable[[int], str | None]


def item_namer(param: str | None, count: int, positions: Sequence[int] | None = None) -> Namer:
    """How errors name item ``i`` of a call: ``param`` alone for one item, else ``param[i]``.

    ``positions`` maps the call's items to their places in the caller's list, when the call carries only
    some of them: then always ``param[position]``.
    """
    if positions is not None:
        return lambda i: f"{param}[{positions[i]}]" if param else None
    return lambda i: f"{param}[{i}]" if param and count > 1 else param


@contextmanager
def naming(where: str | None) -> Iterator[None]:
    """Errors raised inside are about the caller's item ``where``: they name it (see EmbedError.named)."""
    try:
        yield
    except EmbedError as e:
        e.named(where)
        raise
