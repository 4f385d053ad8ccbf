"""EmbedService: limits before the backend, order kept, stats reported, health that really embeds."""

from __future__ import annotations

import base64
from typing import Any

import boto3
import pytest
from moto import mock_aws

from omnisearch_embed.embeddings import Embeddings
from omnisearch_embed.errors import BackendUnavailableError, EmbedError
from omnisearch_embed.s3_images import S3ImageFetcher
from omnisearch_embed.service import EmbedService, EmbedStats
from omnisearch_embed.settings import Settings
from omnisearch_testkit.images import image_bytes, png_claiming
from tests.helpers.backends import StaticBackend, vector_for

BUCKET = "omnisearch-test-images"


def make(backend: Any = None, stats: list[EmbedStats] | None = None, **limits: Any) -> EmbedService:
    settings = Settings(allowed_s3_buckets=(BUCKET,), **limits)
    return EmbedService(backend or StaticBackend(), settings, on_embedded=None if stats is None else stats.append)


def refused(call, *args, **kwargs) -> EmbedError:
    with pytest.raises(EmbedError) as info:
        call(*args, **kwargs)
    return info.value


def test_texts_come_back_in_order_with_flags_and_stats() -> None:
    stats: list[EmbedStats] = []
    long_text = "word " * 200
    emb = make(stats=stats).embed_texts(["b", "a", long_text], normalize=False)
    assert emb.vectors == [vector_for("text", t.encode(), 8, False) for t in ["b", "a", long_text]]
    assert emb.truncated == [False, False, True]
    assert len(stats) == 1 and (stats[0].kind, stats[0].items, stats[0].fallback) == ("text", 3, False)
    assert stats[0].latency_ms >= 0


@pytest.mark.parametrize(
    ("texts", "status", "code", "param"),
    [
        ([], 400, "empty_batch", "texts"),
        (["ok", " \n"], 400, "empty_text", "texts[1]"),
        (["x" * 101], 413, "text_too_long", "texts"),
        (["a"] * 4, 413, "too_many_items", "texts"),
    ],
)
def test_text_refusals_never_reach_the_backend(texts: list[str], status: int, code: str, param: str) -> None:
    backend = StaticBackend()
    error = refused(make(backend, max_text_chars=100, max_batch_items=3).embed_texts, texts)
    assert (error.status, error.code, error.param) == (status, code, param)
    assert backend.calls == []


def test_text_at_the_character_limit_is_accepted_and_flagged_truncated() -> None:
    text = ("a " * 5000)[:10_000]
    emb = make().embed_texts([text], param="text")
    assert len(text) == 10_000 and emb.truncated == [True]


def test_request_byte_limit_counts_utf8_bytes() -> None:
    error = refused(make(max_request_bytes=100).embed_texts, ["é" * 60])  # 120 bytes in UTF-8
    assert (error.status, error.code) == (413, "request_too_large")


def test_image_refs_mix_inline_and_s3_in_order() -> None:
    inline = image_bytes("PNG", colour=(1, 2, 3))
    stored = image_bytes("JPEG", colour=(9, 9, 9))
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="a.jpg", Body=stored)
        settings = Settings(allowed_s3_buckets=(BUCKET,))
        backend = StaticBackend()
        service = EmbedService(backend, settings, s3=S3ImageFetcher(settings, s3_client=s3))
        refs = [f"s3://{BUCKET}/a.jpg", "data:image/png;base64," + base64.b64encode(inline).decode()]
        emb = service.embed_image_refs(refs)
    assert backend.calls == [("images", [stored, inline], True)]
    assert emb.vectors == [vector_for("image", b) for b in (stored, inline)]


@pytest.mark.parametrize(
    ("ref", "status", "code"),
    [
        ("https://example.com/cat.png", 400, "url_not_supported"),
        ("s3://not-allowed-bucket/cat.png", 403, "s3_bucket_not_allowed"),
        ("", 400, "empty_image"),
        (base64.b64encode(png_claiming(20000, 20000)).decode(), 413, "image_too_many_pixels"),
    ],
)
def test_image_ref_refusals(ref: str, status: int, code: str) -> None:
    backend = StaticBackend()
    error = refused(make(backend).embed_image_refs, [ref])
    assert (error.status, error.code) == (status, code)
    assert backend.calls == []


def test_image_bytes_total_limit() -> None:
    png = image_bytes("PNG")
    error = refused(make(max_request_bytes=len(png) * 2 - 1).embed_image_bytes, [png, png])
    assert (error.status, error.code) == (413, "request_too_large")


def test_backend_errors_pass_through_unchanged() -> None:
    failure = BackendUnavailableError("endpoint is down", code="endpoint_unavailable")
    error = refused(make(StaticBackend(fail_with=failure)).embed_texts, ["a"])
    assert error is failure


def test_a_backend_returning_the_wrong_count_is_a_502() -> None:
    class Short(StaticBackend):
        def embed_texts(self, texts, *, normalize=True):  # type: ignore[override]
            return super().embed_texts(list(texts)[:-1], normalize=normalize)

    error = refused(make(Short()).embed_texts, ["a", "b"])
    assert (error.status, error.code) == (502, "model_error")


def test_a_failing_metrics_hook_does_not_fail_the_request(caplog: pytest.LogCaptureFixture) -> None:
    def broken(stats: EmbedStats) -> None:
        raise RuntimeError("metrics down")

    service = EmbedService(StaticBackend(), Settings(), on_embedded=broken)
    assert service.embed_texts(["a"]).count == 1
    assert "on_embedded hook failed" in caplog.text


def test_fallback_answer_is_reported() -> None:
    class Fallen(StaticBackend):
        def embed_texts(self, texts, *, normalize=True):  # type: ignore[override]
            emb = super().embed_texts(texts, normalize=normalize)
            return Embeddings(emb.vectors, emb.model, "local", emb.dimension, emb.truncated, meta={"fallback": True})

    stats: list[EmbedStats] = []
    make(Fallen(), stats).embed_texts(["a"])
    assert stats[0].fallback is True
    report = make(Fallen()).health(deep=True)
    assert report["status"] == "degraded" and report["deep"]["fallback"] is True


def test_shallow_health_does_not_embed() -> None:
    backend = StaticBackend()
    report = make(backend).health()
    assert report["status"] == "ok" and "deep" not in report and backend.calls == []


def test_deep_health_embeds_one_word_and_times_it() -> None:
    backend = StaticBackend()
    report = make(backend).health(deep=True)
    assert backend.calls == [("texts", ["health"], True)]
    assert report["status"] == "ok"
    assert report["deep"]["ok"] is True and report["deep"]["dimension"] == 8 and report["deep"]["norm"] == 1.0


def test_deep_health_is_down_when_inference_fails_even_if_the_backend_says_ok() -> None:
    failure = BackendUnavailableError("no", code="endpoint_unavailable")
    report = make(StaticBackend(fail_with=failure)).health(deep=True)
    assert report["backend"]["status"] == "ok"
    assert report["status"] == "down"
    assert report["deep"]["error"]["code"] == "endpoint_unavailable"


def test_deep_health_catches_zero_vectors() -> None:
    class Zero(StaticBackend):
        def embed_texts(self, texts, *, normalize=True):  # type: ignore[override]
            return Embeddings([[0.0] * 4], self.model_id, self.service, 4)

    report = make(Zero()).health(deep=True)
    assert report["status"] == "down" and report["deep"]["error"]["code"] == "bad_vector"
