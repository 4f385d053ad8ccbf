"""embed_corpus.py --engine api (real HTTP to the local server), --engine endpoint (boto3 to its SageMaker emulation).

The server runs the real handlers over the bundled tiny-shapes model; a counting wrapper around that model
shows what reached it, can fail the first calls (throttling) and can hold a call (a crash mid-run).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from omnisearch_corpus import cli as embed_corpus
from omnisearch_corpus import store as store_module
from omnisearch_corpus.engine_api import ApiEngine
from omnisearch_embed.errors import ThrottledError
from omnisearch_embed.settings import Settings
from tests.corpus.corpus_data import BROKEN, make_captions, make_pictures
from tests.local_server.serving import serving

ROOT = Path(__file__).resolve().parents[2]
KEY = "corpus-test-key"


class CountingBackend:
    """The real model; records each call's size, can throttle the first calls or hold one call."""

    def __init__(self, inner) -> None:
        self.inner, self.model_id, self.service = inner, inner.model_id, inner.service
        self.items: list[int] = []
        self.throttle = 0
        self.hold_call: int | None = None
        self.entered, self.release = threading.Event(), threading.Event()

    def _enter(self, count: int) -> None:
        if self.throttle > 0:
            self.throttle -= 1
            raise ThrottledError("slow down", code="throttled")
        self.items.append(count)
        if self.hold_call is not None and len(self.items) == self.hold_call:
            self.entered.set()
            assert self.release.wait(60)

    def embed_texts(self, texts, *, normalize=True):
        self._enter(len(texts))
        return self.inner.embed_texts(texts, normalize=normalize)

    def embed_images(self, images, *, normalize=True):
        self._enter(len(images))
        return self.inner.embed_images(images, normalize=normalize)

    def health(self):
        return self.inner.health()


@pytest.fixture(scope="module")
def tiny():
    from local_server.clip_backend import LocalClipBackend

    return LocalClipBackend("tiny-shapes")


@pytest.fixture
def api(tiny):
    backend = CountingBackend(tiny)
    settings = Settings.from_env({"API_KEY": KEY, "CLIP_MODEL": "tiny-shapes"})
    with serving(backend, settings, local_model=lambda: tiny) as running:
        yield running.url, backend


@pytest.fixture
def pictures(tmp_path):
    folder = tmp_path / "shapes"
    return folder, make_pictures(folder)


def run(*args) -> int:
    return embed_corpus.main([*map(str, args), "--no-progress"])


def test_api_engine_matches_the_local_model_and_isolates_the_broken_picture(api, pictures, tmp_path, tiny):
    url, _ = api
    folder, names = pictures
    out = tmp_path / "api.parquet"
    code = run(folder, "--output", out, "--engine", "api", "--api-url", url, "--api-key", KEY, "--batch-size", "4")
    assert code == 1
    table = pq.read_table(out)
    assert table.column("id").to_pylist() == names and set(table.column("model").to_pylist()) == {"tiny-shapes"}
    expected = np.asarray(tiny.embed_images([(folder / n).read_bytes() for n in names]).vectors, np.float32)
    np.testing.assert_allclose(store_module.vectors(table), expected, atol=1e-5)
    (error,) = [json.loads(x) for x in (tmp_path / "api.parquet.errors.jsonl").read_text().splitlines()]
    assert error["id"] == BROKEN and error["code"] == "corrupt_image" and "truncated" in error["message"]


def test_api_engine_texts_flag_truncation(api, tmp_path, tiny):
    url, _ = api
    captions = tmp_path / "captions.txt"
    lines = [line for line in make_captions(captions) if line]
    out = tmp_path / "texts.parquet"
    assert run(captions, "--output", out, "--engine", "api", "--api-url", url, "--api-key", KEY, "--allow-errors") == 0
    table = pq.read_table(out)
    assert table.column("truncated").to_pylist()[-1] is True
    np.testing.assert_allclose(
        store_module.vectors(table), np.asarray(tiny.embed_texts(lines).vectors, np.float32), atol=1e-5
    )


def test_api_engine_retries_throttling_with_backoff(api):
    url, backend = api
    backend.throttle = 2  # the first two requests answer 429
    engine = ApiEngine(url, KEY, backoff=0.01)
    result = engine.embed("text", ["a red circle", "a blue star"])
    assert result.errors == [None, None] and backend.items == [2] and result.model == "tiny-shapes"


def test_a_wrong_api_key_stops_the_run_instead_of_failing_every_item(api, tmp_path, capsys):
    url, _ = api
    captions = tmp_path / "captions.txt"
    make_captions(captions)
    with pytest.raises(SystemExit) as stopped:
        run(captions, "--output", tmp_path / "x.parquet", "--engine", "api", "--api-url", url, "--api-key", "wrong")
    assert stopped.value.code == 1 and "answered 401" in capsys.readouterr().err


def test_killed_mid_run_then_resumed_embeds_nothing_twice(api, pictures, tmp_path):
    url, backend = api
    folder, names = pictures
    out = tmp_path / "killed.parquet"
    backend.hold_call = 3  # the third request waits inside the model: the process dies with it in flight
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'layers' / 'common'}:{ROOT}"}
    options = ["--engine", "api", "--api-url", url, "--api-key", KEY, "--batch-size", "2", "--flush-every", "2"]
    options += ["--concurrency", "1", "--allow-errors", "--no-progress"]
    script = [sys.executable, str(ROOT / "scripts" / "embed_corpus.py"), str(folder), "--output", str(out)]
    log = tmp_path / "killed.log"
    with log.open("wb") as sink:
        process = subprocess.Popen([*script, *options], env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        assert backend.entered.wait(120), log.read_text()
        parts = tmp_path / "killed.parquet.parts"
        deadline = time.monotonic() + 30
        while len(list(parts.glob("part-*.parquet"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    finally:
        backend.release.set()
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL and not out.exists()
    saved = pq.read_table(parts).num_rows
    assert saved == 4
    backend.hold_call, before = None, sum(backend.items)
    assert run(folder, "--output", out, *options[:-1]) == 0
    assert sum(backend.items) - before == len(names) - saved  # the API itself refuses the broken picture
    assert pq.read_table(out).column("id").to_pylist() == names


def test_endpoint_engine_through_boto3_and_the_sagemaker_emulation(api, pictures, tmp_path, tiny, monkeypatch):
    url, _ = api
    folder, names = pictures
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)  # the emulation takes a SigV4 key id equal to the API key
    out = tmp_path / "endpoint.parquet"
    assert run(folder, "--output", out, "--engine", "endpoint", "--endpoint-name", "local", "--batch-size", "3") == 1
    table = pq.read_table(out)
    assert table.column("id").to_pylist() == names and set(table.column("model").to_pylist()) == {"tiny-shapes"}
    expected = np.asarray(tiny.embed_images([(folder / n).read_bytes() for n in names]).vectors, np.float32)
    np.testing.assert_allclose(store_module.vectors(table), expected, atol=1e-5)
    (error,) = [json.loads(x) for x in (tmp_path / "endpoint.parquet.errors.jsonl").read_text().splitlines()]
    assert error["id"] == BROKEN and "not a readable image" in error["message"]
