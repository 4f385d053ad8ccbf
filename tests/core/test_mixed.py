"""Mixed batches in the core: split by kind, one call per kind, merged back in order, errors by caller index."""

from __future__ import annotations

import base64

import pytest

from omnisearch_embed.errors import EmbedError
from omnisearch_embed.mixed import IMAGE, TEXT, embed_mixed
from omnisearch_embed.service import EmbedService
from omnisearch_embed.settings import Settings
from omnisearch_testkit.images import image_bytes, truncated_png
from tests.helpers.backends import StaticBackend, vector_for

PNG = image_bytes()
GIF = image_bytes("GIF", colour=(200, 10, 10))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_items_come_back_in_order_from_one_text_call_and_one_image_call() -> None:
    backend = StaticBackend()
    service = EmbedService(backend, Settings())
    items = [(IMAGE, b64(PNG)), (TEXT, "a red circle"), (IMAGE, "data:image/gif;base64," + b64(GIF)), (TEXT, "star")]
    emb = embed_mixed(service, items)
    assert [kind for kind, _, _ in backend.calls] == ["images", "texts"]
    assert backend.calls[1][1] == ["a red circle", "star"] and backend.calls[0][1] == [PNG, GIF]
    assert emb.vectors == [
        vector_for("image", PNG),
        vector_for("text", b"a red circle"),
        vector_for("image", GIF),
        vector_for("text", b"star"),
    ]
    assert emb.truncated == [False, False, False, False] and emb.tokens == [0, 5, 0, 3]
    assert (emb.model, emb.service, emb.dimension, emb.count) == ("static-test", "local", 8, 4)


def test_one_kind_only_is_one_call_with_flags_for_every_item() -> None:
    backend = StaticBackend()
    emb = embed_mixed(EmbedService(backend, Settings()), [(IMAGE, b64(PNG)), (IMAGE, b64(GIF))])
    assert [kind for kind, _, _ in backend.calls] == ["images"] and emb.truncated == [False, False]


@pytest.mark.parametrize(
    ("items", "code", "param"),
    [
        ([(TEXT, "a"), (IMAGE, b64(PNG)), (TEXT, " ")], "empty_text", "items[2]"),
        ([(TEXT, "a"), (TEXT, "b"), (IMAGE, b64(truncated_png()))], "corrupt_image", "items[2]"),
        ([(IMAGE, b64(PNG)), (IMAGE, "https://example.com/cat.png")], "url_not_supported", "items[1]"),
        ([(TEXT, "only one")] * 0, "empty_batch", "items"),
    ],
)
def test_a_bad_item_fails_the_batch_naming_its_place(items: list[tuple[str, str]], code: str, param: str) -> None:
    backend = StaticBackend()
    with pytest.raises(EmbedError) as info:
        embed_mixed(EmbedService(backend, Settings()), items)
    assert (info.value.code, info.value.param) == (code, param)
    if "[" in param:
        assert info.value.message.startswith(param), info.value.message


def test_the_item_limit_counts_both_kinds() -> None:
    service = EmbedService(StaticBackend(), Settings(max_batch_items=3))
    with pytest.raises(EmbedError) as info:
        embed_mixed(service, [(TEXT, "a"), (TEXT, "b"), (IMAGE, b64(PNG)), (IMAGE, b64(PNG))])
    assert info.value.code == "too_many_items"


def test_two_models_in_one_answer_are_refused() -> None:
    class TwoModels(StaticBackend):
        def embed_images(self, images, *, normalize=True):  # type: ignore[no-untyped-def]
            emb = super().embed_images(images, normalize=normalize)
            return type(emb)(emb.vectors, "other-model", emb.service, emb.dimension)

    with pytest.raises(EmbedError) as info:
        embed_mixed(EmbedService(TwoModels(), Settings()), [(TEXT, "a"), (IMAGE, b64(PNG))])
    assert (int(info.value.status), info.value.code) == (502, "model_mismatch")
