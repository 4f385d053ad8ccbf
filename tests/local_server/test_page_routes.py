"""The try-it page and its corpus search over real HTTP: the page, the search, thumbnails, keys and every refusal.

The index is built by the real corpus indexer (pictures, then captions appended to the same file). The
expected ranking is computed here from the Parquet file with pyarrow and numpy against the query vector
that ``/embed/text`` returns, so the route is checked against the index, not against fixed answers.
"""

from __future__ import annotations

import base64
import json
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import functions.embed.app as embed_app
from local_server.lambda_context import LambdaContext
from local_server.page.corpus_index import CorpusIndex, IndexFileError, IndexModelMismatchError, load_index
from local_server.page.routes import DEFAULT_LABELS
from model_code.tiny_shapes.shapes import COLOURS, SHAPES
from omnisearch_embed.settings import LAMBDA_MAX_EVENT_BYTES, Settings
from omnisearch_testkit.events import make_event
from tests.helpers.backends import StaticBackend
from tests.helpers.fuzz import BOUNDED, REFS, Request, check_answer, requests, texts
from tests.helpers.lambda_app import SETTINGS
from tests.helpers.local_server_process import ROOT, child_env, interrupt, started
from tests.local_server.page_corpus import CAPTIONS, OTHER_MODEL, PICTURES, build_corpus, other_model_index
from tests.local_server.serving import GatedBackend, serving
from tests.test_readme_error_codes import LITERAL, documented

KEY = "page-test-key"
CAPTIONS_ID = "captions.txt:1"
PAGE_SOURCES = sorted((ROOT / "local_server" / "page").glob("*.py"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def client(tiny: Any, corpus: Path) -> Iterator[httpx.Client]:
    with (
        serving(tiny, Settings(), local_model=lambda: tiny, workers=4, index=load_index(corpus)) as running,
        httpx.Client(base_url=running.url, timeout=60) as http,
    ):
        yield http


@pytest.fixture(scope="module")
def keyed(tiny: Any, corpus: Path) -> Iterator[httpx.Client]:
    settings = Settings(api_key=KEY)
    with (
        serving(tiny, settings, local_model=lambda: tiny, workers=4, index=load_index(corpus)) as running,
        httpx.Client(base_url=running.url, timeout=60) as http,
    ):
        yield http


def data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def expected_ids(corpus: Path, vector: list[float]) -> list[str]:
    table = pq.read_table(corpus)
    matrix = np.stack(table.column("vector").to_numpy(zero_copy_only=False)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    order = np.argsort(-(matrix @ np.asarray(vector, np.float32)), kind="stable")
    return [table.column("id")[int(i)].as_py() for i in order]


# -- the page ---------------------------------------------------------------------------------------------
def test_the_page_and_its_assets_are_open_and_never_carry_the_key(keyed: httpx.Client) -> None:
    page = keyed.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert '<script src="/page/app.js"' in page.text and 'id="labels"' in page.text
    script, style = keyed.get("/page/app.js"), keyed.get("/page/style.css")
    assert script.status_code == style.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript") and "/index/search" in script.text
    config = keyed.get("/page/config")
    assert config.json() == {
        "model": "tiny-shapes",
        "key_required": True,
        "labels": [*COLOURS, *SHAPES],
        "template": "a photo of {}",
        "index": True,
    }
    for answer in (page, script, style, config):
        assert KEY not in answer.text
    missing = keyed.get("/page/nothing.js")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "route_not_found"
    assert list(DEFAULT_LABELS) == [*COLOURS, *SHAPES]


def test_lambda_never_serves_the_page_or_the_search() -> None:
    app = embed_app.build_app(StaticBackend(), SETTINGS)
    for method, path in (("GET", "/"), ("GET", "/page/config"), ("POST", "/index/search")):
        body = {"text": "a red circle"} if method == "POST" else None
        response = app.resolve(make_event(method, path, body=body), LambdaContext())
        assert response["statusCode"] == 404, (method, path, response["body"])
        assert '"route_not_found"' in response["body"]


# -- search -----------------------------------------------------------------------------------------------
def test_a_text_query_ranks_the_whole_corpus_by_cosine(client: httpx.Client, corpus: Path) -> None:
    query = client.post("/embed/text", json={"text": "a blue star"}).json()["embedding"]
    answer = client.post("/index/search", json={"text": "a blue star", "k": 8})
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    assert doc["model"] == "tiny-shapes" and doc["query"] == {"kind": "text", "truncated": False}
    assert doc["index"] == {
        "file": "corpus.parquet",
        "model": "tiny-shapes",
        "dimension": 64,
        "rows": len(PICTURES) + len(CAPTIONS),
        "kinds": {"image": len(PICTURES), "text": len(CAPTIONS)},
    }
    results = doc["results"]
    assert [r["id"] for r in results] == expected_ids(corpus, query)
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)
    # the caption itself, then the picture it describes (with a thumbnail); texts come with their text
    assert results[0] == {
        "id": "captions.txt:2",
        "kind": "text",
        "source": f"{corpus.parent / 'captions.txt'}:2",
        "text": "a blue star",
        "score": pytest.approx(1.0, abs=1e-5),
        "thumbnail": None,
    }
    best_image = next(r for r in results if r["kind"] == "image")
    assert best_image["id"] == "blue-star.png" and best_image["text"] is None
    assert best_image["source"] == str(corpus.parent / "shapes" / "blue-star.png")
    assert client.post("/index/search", json={"text": "a blue star", "k": 2}).json()["results"] == results[:2]


def test_an_image_query_finds_its_picture_and_the_thumbnail_is_the_file(client: httpx.Client, corpus: Path) -> None:
    picture = corpus.parent / "shapes" / "red-circle.png"
    answer = client.post("/index/search", json={"image": data_uri(picture.read_bytes()), "k": 3})
    assert answer.status_code == 200, answer.text
    first = answer.json()["results"][0]
    assert (first["id"], first["kind"]) == ("red-circle.png", "image")
    assert first["score"] == pytest.approx(1.0, abs=1e-4) and answer.json()["query"]["kind"] == "image"
    thumbnail = client.get(first["thumbnail"])
    assert thumbnail.status_code == 200 and thumbnail.headers["content-type"] == "image/png"
    assert thumbnail.content == picture.read_bytes()


def test_relative_sources_are_found_beside_the_index(tiny: Any, corpus: Path, tmp_path: Path) -> None:
    table = pq.read_table(corpus)
    relative = [s.replace(f"{corpus.parent}/", "") for s in table.column("source").to_pylist()]
    moved = corpus.parent / "relative.parquet"
    pq.write_table(table.set_column(table.schema.get_field_index("source"), "source", [relative]), moved)
    with serving(tiny, Settings(), local_model=lambda: tiny, workers=2, index=load_index(moved)) as running:
        answer = httpx.post(f"{running.url}/index/search", json={"text": "a red circle"}).json()["results"]
        image = next(r for r in answer if r["kind"] == "image")
        assert image["source"] == "shapes/red-circle.png" and image["thumbnail"]
        assert httpx.get(running.url + image["thumbnail"]).content == (corpus.parent / image["source"]).read_bytes()


def test_s3_and_missing_images_have_no_thumbnail(tiny: Any, corpus: Path) -> None:
    table = pq.read_table(corpus)
    sources = [
        {"blue-star.png": "s3://bucket/shapes/blue-star.png", "red-circle.png": "/nowhere/red-circle.png"}.get(i, s)
        for i, s in zip(table.column("id").to_pylist(), table.column("source").to_pylist(), strict=True)
    ]
    other = corpus.parent / "elsewhere.parquet"
    pq.write_table(table.set_column(table.schema.get_field_index("source"), "source", [sources]), other)
    index = load_index(other)
    with serving(tiny, Settings(), local_model=lambda: tiny, workers=2, index=index) as running:
        results = httpx.post(f"{running.url}/index/search", json={"text": "a star", "k": 8}).json()["results"]
        by_id = {r["id"]: r for r in results}
        assert by_id["blue-star.png"]["thumbnail"] is None and by_id["blue-star.png"]["source"].startswith("s3://")
        assert by_id["red-circle.png"]["thumbnail"] is None and by_id["purple-star.png"]["thumbnail"]
        for row in (index.ids.index("blue-star.png"), index.ids.index("red-circle.png"), index.ids.index(CAPTIONS_ID)):
            gone = httpx.get(f"{running.url}/index/items/{row}/image")
            assert gone.status_code == 404 and gone.json()["error"]["code"] == "thumbnail_not_found"


# -- refusals ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 400, "invalid_input"),
        ({"text": "a red circle", "image": "aGk="}, 400, "invalid_input"),
        ({"text": "   "}, 400, "empty_text"),
        ({"text": "x" * 10_001}, 413, "text_too_long"),
        ({"text": "\ud800"}, 400, "invalid_text"),
        ({"image": "not base64!"}, 400, "invalid_base64"),
        ({"image": "https://example.com/cat.png"}, 400, "url_not_supported"),
        ({"image": base64.b64encode(b"GIF89a not really").decode()}, 422, "corrupt_image"),
        ({"text": "a red circle", "k": 0}, 422, "validation_error"),
        ({"text": "a red circle", "k": 101}, 422, "validation_error"),
        ({"text": "a red circle", "k": "3"}, 422, "validation_error"),
        ({"text": 3}, 422, "validation_error"),
        ({"text": "a red circle", "top_k": 3}, 422, "validation_error"),
        ([], 422, "validation_error"),
    ],
)
def test_bad_search_bodies(client: httpx.Client, body: Any, status: int, code: str) -> None:
    sent = json.dumps(body)  # ASCII escapes: a lone surrogate travels as JSON's \ud800
    answer = client.post("/index/search", content=sent, headers={"content-type": "application/json"})
    assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), answer.text


@pytest.mark.parametrize(
    ("content", "headers", "status", "code"),
    [
        (b"{", {"content-type": "application/json"}, 400, "invalid_json"),
        (b"", {"content-type": "application/json"}, 422, "validation_error"),
        (b'{"text": "\xff"}', {"content-type": "application/json"}, 400, "invalid_body"),
        (b"text=a", {"content-type": "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"),
        (b"x" * (LAMBDA_MAX_EVENT_BYTES + 1), {"content-type": "application/json"}, 413, "request_too_large"),
    ],
)
def test_unreadable_search_requests(
    client: httpx.Client, content: bytes, headers: dict, status: int, code: str
) -> None:
    answer = client.post("/index/search", content=content, headers=headers)
    assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), answer.text


_SHAPED = st.fixed_dictionaries(
    {}, optional={"text": texts, "image": st.sampled_from(REFS), "k": st.integers(-2, 200) | st.sampled_from(REFS)}
)
_SEARCHES = requests(["/index/search"]) | _SHAPED.map(
    lambda doc: Request("/index/search", "application/json", json.dumps(doc).encode())
)


@settings(BOUNDED, max_examples=40)
@given(request=_SEARCHES)
def test_any_search_body_gets_json_and_no_5xx(client: httpx.Client, request: Request) -> None:
    ctype = request.content_type.strip()
    response = client.post("/index/search", content=request.body, headers={"content-type": ctype} if ctype else {})
    answer = check_answer(
        request.path, response.status_code, response.headers.get("content-type", ""), response.content
    )
    if response.status_code == 200:
        assert answer["results"] and answer["index"]["rows"] == len(PICTURES) + len(CAPTIONS)


def test_wrong_methods_are_named_with_allow(client: httpx.Client) -> None:
    for method, path, allow in (("GET", "/index/search", "POST"), ("POST", "/index", "GET, HEAD")):
        answer = client.request(method, path)
        assert answer.status_code == 405 and answer.json()["error"]["code"] == "method_not_allowed"
        assert answer.headers["allow"] == allow


def test_the_key_guards_the_search_and_the_thumbnails(keyed: httpx.Client) -> None:
    for method, path, body in (("GET", "/index", None), ("POST", "/index/search", {"text": "a red circle"})):
        refused = keyed.request(method, path, json=body)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
    found = keyed.post("/index/search", json={"text": "a red circle"}, headers={"x-api-key": KEY})
    assert found.status_code == 200, found.text
    thumbnail = next(r["thumbnail"] for r in found.json()["results"] if r["thumbnail"])
    assert keyed.get(thumbnail).status_code == 401
    assert keyed.get(thumbnail, headers={"authorization": f"Bearer {KEY}"}).status_code == 200


def test_without_an_index_the_search_says_how_to_get_one(server: Any) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.get("/page/config").json()["index"] is False
        for method, path in (("GET", "/index"), ("POST", "/index/search"), ("GET", "/index/items/0/image")):
            answer = http.request(method, path, json={"text": "a red circle"} if method == "POST" else None)
            assert answer.status_code == 404 and answer.json()["error"]["code"] == "index_not_loaded"
            assert "--index" in answer.json()["error"]["message"]


def test_an_index_of_another_model_is_refused_naming_both(tiny: Any, tmp_path: Path) -> None:
    index = load_index(other_model_index(tmp_path))
    gated = GatedBackend(tiny)
    with serving(gated, Settings(), local_model=lambda: tiny, workers=2, index=index) as running:
        for method, path in (("GET", "/index"), ("POST", "/index/search")):
            answer = httpx.request(method, running.url + path, json={"text": "a red circle"})
            error = answer.json()["error"]
            assert answer.status_code == 409 and error["code"] == "index_model_mismatch"
            assert OTHER_MODEL in error["message"] and "tiny-shapes" in error["message"]
    assert gated.calls == []  # refused before the query was embedded
    with pytest.raises(IndexModelMismatchError, match="dimension 32"):
        load_index(build_corpus(tmp_path / "same")).check_model("tiny-shapes", 32)


def test_the_search_runs_on_a_worker_thread_not_the_event_loop(tiny: Any, corpus: Path) -> None:
    index = load_index(corpus)
    threads: list[str] = []
    search = index.search

    def recorded(*args: Any) -> Any:
        threads.append(threading.current_thread().name)
        return search(*args)

    index.search = recorded  # type: ignore[method-assign]
    with serving(tiny, Settings(), local_model=lambda: tiny, workers=2, index=index) as running:
        answer = httpx.post(f"{running.url}/index/search", json={"text": "a red circle", "k": 3}, timeout=60)
    assert answer.status_code == 200 and len(answer.json()["results"]) == 3, answer.text
    assert len(threads) == 1 and threads[0].startswith("apigw-worker"), threads


class CountedPasses(list):
    """A list that counts the passes over it (iterations and ``count`` calls)."""

    passes = 0

    def __iter__(self) -> Iterator[Any]:
        self.passes += 1
        return super().__iter__()

    def count(self, value: Any) -> int:
        self.passes += 1
        return super().count(value)


def test_the_summary_is_counted_once_at_load_not_per_search() -> None:
    kinds = CountedPasses(["image", "text", "image"])
    matrix = np.eye(3, dtype=np.float32)
    index = CorpusIndex(Path("i.parquet"), "m", matrix, ["a", "b", "c"], kinds, ["a", "b", "c"], [None, "b", None])
    at_load = kinds.passes
    for _ in range(3):
        assert index.summary() == {
            "file": "i.parquet", "model": "m", "dimension": 3, "rows": 3, "kinds": {"image": 2, "text": 1}
        }  # fmt: skip
        assert [hit.id for hit in index.search([0.0, 1.0, 0.0], 1)] == ["b"]
    assert kinds.passes == at_load


def index_file(path: Path, vectors: list[Any]) -> Path:
    n = len(vectors)
    table = pa.table(
        {"id": [f"r{i}" for i in range(n)], "source": ["s"] * n, "kind": ["text"] * n, "vector": vectors},
        metadata={b"omnisearch_embed": json.dumps({"model": "m"}).encode()},
    )
    pq.write_table(table, path)
    return path


@pytest.mark.parametrize(
    ("vectors", "says"),
    [
        ([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0, 5.0]], "do not all have one dimension (3 to 5 values)"),  # 8 = 2 x 4
        ([[1.0, 2.0], None], "missing"),
        ([[1.0, None], [1.0, 2.0]], "missing"),
        ([[], []], "empty"),
        (["a", "b"], "not a list of numbers"),
    ],
    ids=["3 and 5 values in 2 rows", "a row without a vector", "a missing value", "empty vectors", "strings"],
)
def test_vectors_of_unequal_length_are_refused_by_their_shapes(tmp_path: Path, vectors: list[Any], says: str) -> None:
    with pytest.raises(IndexFileError) as info:
        load_index(index_file(tmp_path / "bad.parquet", vectors))
    assert says in str(info.value)


def test_vectors_of_one_length_load_as_rows(tmp_path: Path) -> None:
    index = load_index(index_file(tmp_path / "good.parquet", [[3.0, 4.0], [0.0, 2.0], [1.0, 0.0]]))
    assert (index.rows, index.dimension) == (3, 2)
    assert np.allclose(index.matrix, [[0.6, 0.8], [0.0, 1.0], [1.0, 0.0]])


class CrashingBackend(GatedBackend):
    """The real model for everything but texts, where it crashes as a bug would (not an EmbedError)."""

    def embed_texts(self, texts: Any, *, normalize: bool = True) -> Any:
        raise RuntimeError("secret internals")


def test_a_crash_is_a_json_500_without_the_details(tiny: Any, corpus: Path) -> None:
    backend = CrashingBackend(tiny)
    with serving(backend, Settings(), local_model=lambda: tiny, workers=2, index=load_index(corpus)) as running:
        answer = httpx.post(f"{running.url}/index/search", json={"text": "a red circle"})
        assert answer.status_code == 500 and answer.json()["error"]["code"] == "internal_error"
        assert "secret" not in answer.text
        image = data_uri((corpus.parent / "shapes" / "red-circle.png").read_bytes())
        assert httpx.post(f"{running.url}/index/search", json={"image": image}).status_code == 200  # still serving


def test_page_codes_are_in_the_readme() -> None:
    raised = {code for path in PAGE_SOURCES for match in LITERAL.findall(path.read_text()) for code in match if code}
    raised |= set(re.findall(r'code = "([a-z0-9_]+)"', "".join(p.read_text() for p in PAGE_SOURCES)))
    assert {"index_model_mismatch", "index_not_loaded", "thumbnail_not_found", "method_not_allowed"} <= raised
    assert raised <= documented(), sorted(raised - documented())


# -- the command line -------------------------------------------------------------------------------------
def test_the_banner_says_where_the_page_is_and_what_it_searches(tiny: Any, corpus: Path, tmp_path: Path) -> None:
    from local_server.cli import banner

    url = "http://127.0.0.1:8000"
    assert f"Page         {url}/   (zero-shot labels; --index FILE.parquet" in banner(url, tiny, Settings(), 2)
    line = banner(url, tiny, Settings(), 2, index=load_index(corpus))
    assert f"Page         {url}/   index corpus.parquet: {len(PICTURES) + len(CAPTIONS)} rows of tiny-shapes" in line


def test_the_server_starts_with_an_index_of_another_model_and_refuses_it(tmp_path: Path) -> None:
    index = other_model_index(tmp_path)
    args = [sys.executable, "-m", "local_server", "--port", "0", "--workers", "2", "--index", str(index)]
    with started(args, child_env(("CLIP_", "USE_SAGEMAKER", "API_KEY"))) as (process, text):
        url = re.search(r"API\s+(http://127\.0\.0\.1:\d+)", text).group(1)
        assert f"index vit.parquet REFUSED: it holds vectors of {OTHER_MODEL}" in text and "tiny-shapes" in text
        answer = httpx.get(f"{url}/index", timeout=30)
        assert answer.status_code == 409 and answer.json()["error"]["code"] == "index_model_mismatch"
        assert httpx.get(f"{url}/", timeout=30).status_code == 200
        interrupt(process)


@pytest.mark.parametrize("name", ["missing.parquet", "vectors.npy", "not-parquet.parquet", "plain.parquet"])
def test_an_unusable_index_file_stops_the_start(tmp_path: Path, name: str, capsys: pytest.CaptureFixture) -> None:
    from local_server.cli import main

    path = tmp_path / name
    if name == "not-parquet.parquet":
        path.write_text("id,vector\n")
    elif name == "plain.parquet":
        pq.write_table(pq.read_table(other_model_index(tmp_path)).replace_schema_metadata({}), path)
    assert main(["--port", "0", "--index", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cannot use the index: ") and str(path) in err and "Traceback" not in err
