"""Batch Transform's record formats under the real serving stack, and embed_corpus's join of what it writes.

Batch Transform sends the container one raw image object per request, or newline-joined JSON lines of
texts, with the job's Accept (``application/jsonlines``). Here the toolkit answers them; the data plane
(tests/corpus/transform_data_plane.py) splits, sends and assembles as AWS documents; moto holds S3 and the
job; embed_corpus.py joins the .out objects back to ids. The local backend is the reference for vectors.
"""

from __future__ import annotations

import base64
import json
import urllib.request

import boto3
import numpy as np
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from local_server.clip_backend import LocalClipBackend
from omnisearch_corpus import cli as embed_corpus
from omnisearch_corpus import store as store_module
from omnisearch_testkit.images import image_bytes
from omnisearch_testkit.toolkit_harness import Toolkit
from tests.corpus.corpus_data import BROKEN, make_captions, upload_pictures
from tests.corpus.transform_data_plane import http_invoke, run_job

LINES = "application/jsonlines"
BUCKET = "corpus-bucket"


@pytest.fixture(scope="module")
def local() -> LocalClipBackend:
    return LocalClipBackend("tiny-shapes")


def post(url: str, body: bytes, content_type: str, accept: str = LINES) -> tuple[int, str, bytes]:
    headers = {"Content-Type": content_type, "Accept": accept}
    request = urllib.request.Request(url + "/invocations", data=body, headers=headers)
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status, response.headers.get("Content-Type", ""), response.read()


def lines(body: bytes) -> list[dict]:
    return [json.loads(line) for line in body.decode().split("\n") if line.strip()]


def unit_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_a_raw_image_object_answers_one_line_and_a_broken_one_an_error_line(toolkit: Toolkit, local):
    png = image_bytes(size=(64, 48), colour=(220, 30, 30))
    status, content_type, body = post(toolkit.url, png, "image/png")
    (doc,) = lines(body)
    assert status == 200 and content_type.startswith(LINES) and doc["model"] == "tiny-shapes"
    vector = np.frombuffer(base64.b64decode(doc["embedding"]), dtype="<f4")
    assert unit_cosines(vector[None], np.asarray(local.embed_images([png]).vectors))[0] >= 0.9999
    status, _, body = post(toolkit.url, png[: len(png) // 3], "application/x-image")
    (bad,) = lines(body)
    assert status == 200 and bad["error"]["code"] == "invalid_image"  # a record's error, not a failed object


def test_json_lines_of_texts_answer_one_line_per_record_in_order(toolkit: Toolkit, local):
    records = [{"id": "a", "text": "a red circle"}, "a blue star", {"id": 3, "text": "red " * 90}, {"id": "x"}]
    body = "\n".join(json.dumps(r) for r in records).encode() + b"\n"
    status, content_type, answer = post(toolkit.url, body, LINES)
    docs = lines(answer)
    assert status == 200 and content_type.startswith(LINES)
    assert [d.get("id") for d in docs] == ["a", None, 3, "x"] and docs[3]["error"]["code"] == "invalid_record"
    vectors = np.stack([np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in docs[:3]])
    expected = np.asarray(local.embed_texts(["a red circle", "a blue star", "red " * 90]).vectors)
    assert unit_cosines(vectors, expected).min() >= 0.9999
    assert [d["truncated"] for d in docs[:3]] == [False, False, True]


@pytest.fixture
def aws():
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        yield s3, boto3.client("sagemaker", region_name="us-east-1")


def run(*args) -> int:
    return embed_corpus.main([*map(str, args), "--no-progress", "--model-name", "omnisearch-embed-model"])


@pytest.mark.parametrize("strategy", ["MultiRecord", "SingleRecord"])
def test_texts_joined_from_what_the_container_wrote(toolkit: Toolkit, local, aws, tmp_path, strategy):
    s3, sm = aws
    captions = tmp_path / "captions.txt"
    good = [line for line in make_captions(captions) if line]
    out = tmp_path / "captions.parquet"
    options = [captions, "--output", out, "--engine", "batch-transform", "--work-uri", f"s3://{BUCKET}/jobs/"]
    options += ["--batch-strategy", strategy, "--allow-errors"]
    assert run(*options, "--no-wait") == 0
    job = json.loads((tmp_path / "captions.parquet.transform.json").read_text())["job_name"]
    assert run_job(sm, s3, job, http_invoke(toolkit.url)) == {"succeeded": 1, "failed": 0}
    assert run(*options) == 0
    table = pq.read_table(out)
    assert table.column("id").to_pylist() == [f"captions.txt:{n}" for n in (1, 2, 3, 5, 6, 7, 8, 9, 10)]
    assert table.column("truncated").to_pylist() == [False] * 8 + [True]
    expected = np.asarray(local.embed_texts(good).vectors)
    assert unit_cosines(store_module.vectors(table), expected).min() >= 0.9999


def test_image_objects_joined_from_what_the_container_wrote(toolkit: Toolkit, local, aws, tmp_path):
    s3, sm = aws
    folder = tmp_path / "shapes"
    names = upload_pictures(s3, BUCKET, folder)
    out = tmp_path / "photos.parquet"
    options = [f"s3://{BUCKET}/photos/", "--output", out, "--engine", "batch-transform"]
    options += ["--work-uri", f"s3://{BUCKET}/jobs/"]
    assert run(*options, "--no-wait") == 0
    job = json.loads((tmp_path / "photos.parquet.transform.json").read_text())["job_name"]
    assert run_job(sm, s3, job, http_invoke(toolkit.url)) == {"succeeded": 9, "failed": 0}
    assert run(*options) == 1  # the broken picture failed, every other one is in the file
    table = pq.read_table(out)
    assert table.column("id").to_pylist() == names
    expected = np.asarray(local.embed_images([(folder / n).read_bytes() for n in names]).vectors)
    assert unit_cosines(store_module.vectors(table), expected).min() >= 0.9999
    (error,) = [json.loads(x) for x in (tmp_path / "photos.parquet.errors.jsonl").read_text().splitlines()]
    assert error["id"] == BROKEN and error["code"] == "invalid_image" and "not a readable image" in error["message"]
