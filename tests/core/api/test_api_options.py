"""Option parsing of the routes that read forms and query strings (api/image.py, api/classify.py) and of
/v1/embeddings' inputs (api/openai_routes.py), called directly."""

from __future__ import annotations

from typing import Any

import pytest

from omnisearch_embed.api.classify import _form_labels, _form_options
from omnisearch_embed.api.image import _options as image_options
from omnisearch_embed.api.openai_routes import _check_model, _inputs, model_aliases
from omnisearch_embed.env import FALSE_WORDS, TRUE_WORDS
from omnisearch_embed.errors import EmbedError, InvalidInputError
from omnisearch_embed.openai_schemas import OpenAIEmbeddingRequest


@pytest.mark.parametrize("word", sorted(TRUE_WORDS | FALSE_WORDS))
def test_image_normalize_takes_the_settings_boolean_words(word: str) -> None:
    assert image_options({"normalize": word.upper()}) == (word in TRUE_WORDS, "float")


@pytest.mark.parametrize(
    ("values", "param"),
    [({"normalize": ""}, "normalize"), ({"normalize": "maybe"}, "normalize"), ({"encoding": "hex"}, "encoding"),
     ({"colour": "red"}, "colour")],
)  # fmt: skip
def test_image_options_refuse_what_they_do_not_know(values: dict[str, str], param: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        image_options(values)
    assert (info.value.code, info.value.param) == ("invalid_option", param)


def test_classify_form_options() -> None:
    assert _form_options({"top_k": "2", "template": "a {}"}, ["a"]) == {"labels": ["a"], "top_k": 2, "template": "a {}"}
    for values, param in (({"top_k": "two"}, "top_k"), ({"k": "1"}, "k")):
        with pytest.raises(InvalidInputError) as info:
            _form_options(values, ["a"])
        assert (info.value.code, info.value.param) == ("invalid_option", param)


@pytest.mark.parametrize(
    ("raw", "code"), [(None, "too_few_labels"), ("circle", "invalid_option"), ("[1]", "invalid_option")]
)
def test_classify_form_labels_are_a_json_array_of_strings(raw: str | None, code: str) -> None:
    assert _form_labels('["circle", "square"]') == ["circle", "square"]
    with pytest.raises(InvalidInputError) as info:
        _form_labels(raw)
    assert (info.value.code, info.value.param) == (code, "labels")


def test_openai_model_aliases_and_unknown_models() -> None:
    assert model_aliases("ViT-B-32/openai") == {"vit-b-32/openai", "vit-b-32"}
    _check_model(" vit-b-32 ", "ViT-B-32/openai")
    with pytest.raises(EmbedError) as info:
        _check_model("text-embedding-3-small", "ViT-B-32/openai")
    assert (info.value.status, info.value.code, info.value.param) == (404, "model_not_found", "model")


@pytest.mark.parametrize(
    ("request_body", "items_or_error"),
    [({"input": "a"}, ["a"]), ({"input": ["a", "b"]}, ["a", "b"]),
     ({"input": [[1, 2]]}, ("token_input_not_supported", "input")),
     ({"input": ["data:image/png;base64,AA", "a cat"], "modality": "image"}, ("invalid_image_reference", "input[1]"))],
)  # fmt: skip
def test_openai_inputs(request_body: dict[str, Any], items_or_error: Any) -> None:
    request = OpenAIEmbeddingRequest.model_validate({"model": "m", **request_body})
    if isinstance(items_or_error, list):
        assert _inputs(request) == items_or_error
        return
    with pytest.raises(InvalidInputError) as info:
        _inputs(request)
    assert (info.value.code, info.value.param) == items_or_error
