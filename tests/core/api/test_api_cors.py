"""api/cors.py directly: no CORS without an origin; with one, the headers the OpenAI JS SDK sends are allowed."""

from __future__ import annotations

from omnisearch_embed.api.cors import ALLOW_HEADERS, MAX_AGE_SECONDS, cors_config
from omnisearch_embed.settings import Settings


def test_no_origin_means_no_cors() -> None:
    assert cors_config(Settings()) is None


def test_an_origin_allows_the_sdk_headers_and_no_other_origin() -> None:
    config = cors_config(Settings(cors_allow_origin="https://app.example.com"))
    assert config is not None
    headers = config.to_dict("https://app.example.com")
    assert headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert set(ALLOW_HEADERS) <= set(headers["Access-Control-Allow-Headers"].split(","))
    assert headers["Access-Control-Max-Age"] == str(MAX_AGE_SECONDS)
    assert config.to_dict("https://elsewhere.example.com") == {}
