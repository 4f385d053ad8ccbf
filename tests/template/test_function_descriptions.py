"""A function's Description is what the Lambda console shows: it names every API path the function serves."""

from __future__ import annotations

from typing import Any

import pytest

from tests.template.conftest import raw_template


def api_paths(resource: dict[str, Any]) -> list[str]:
    events = resource["Properties"].get("Events", {}).values()
    return [event["Properties"]["Path"] for event in events if event["Type"] == "Api"]


def covered(path: str, description: str) -> bool:
    """``/embed/*`` covers ``/embed/text``; ``/v1/models`` covers ``/v1/models/{model_id}``."""
    for word in description.replace(",", " ").split():
        if word.endswith("*") and path.startswith(word[:-1]):
            return True
        if word.startswith("/") and (path == word or path.startswith(word + "/")):
            return True
    return False


def served_paths(template: dict[str, Any]) -> list[tuple[str, str]]:
    functions = {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}
    return [(name, path) for name, resource in sorted(functions.items()) for path in api_paths(resource)]


def test_the_embed_function_serves_classify(template: dict[str, Any]) -> None:
    assert ("EmbedFunction", "/classify") in served_paths(template)  # so the test below checks it


@pytest.mark.parametrize("name, path", served_paths(raw_template()))
def test_each_api_path_is_named_in_its_function_description(template: dict[str, Any], name: str, path: str) -> None:
    description = template["Resources"][name]["Properties"]["Description"]
    assert covered(path, description), f"{name}'s Description {description!r} does not name {path}"
