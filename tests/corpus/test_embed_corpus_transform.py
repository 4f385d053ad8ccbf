"""embed_corpus.py --engine batch-transform: the control plane on moto, the wait on Stubber, the join.

moto records the job and calls it Completed at once, so the tests start it with --no-wait, run Batch
Transform's data plane (transform_data_plane.run_job) through the container's own functions in process,
and re-run the command, which attaches to the saved job and joins the .out objects back to ids.
"""

from __future__ import annotations

import json

import boto3
import numpy as np
import pyarrow.parquet as pq
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from omnisearch_corpus import batch_transform as bt
from omnisearch_corpus import cli as embed_corpus
from omnisearch_corpus import store as store_module
from tests.corpus.corpus_data import BROKEN, make_captions, upload_pictures
from tests.corpus.transform_data_plane import run_job

BUCKET = "corpus-bucket"
ROLE = "arn:aws:iam::123456789012:role/sagemaker"


@pytest.fixture(scope="module")
def tiny():
    from local_server.clip_backend import LocalClipBackend

    return LocalClipBackend("tiny-shapes")


@pytest.fixture
def aws():
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        sm = boto3.client("sagemaker", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        sm.create_model(
            ModelName="omnisearch-embed-model",
            ExecutionRoleArn=ROLE,
            PrimaryContainer={"Image": "pytorch-inference:2.6", "ModelDataUrl": f"s3://{BUCKET}/model.tar.gz"},
        )
        variant = {"VariantName": "AllTraffic", "ModelName": "omnisearch-embed-model", "InitialInstanceCount": 1}
        sm.create_endpoint_config(
            EndpointConfigName="cfg", ProductionVariants=[{**variant, "InstanceType": "ml.g4dn.xlarge"}]
        )
        sm.create_endpoint(EndpointName="omnisearch-embed-dev", EndpointConfigName="cfg")
        yield s3, sm


def run(*args) -> int:
    return embed_corpus.main([*map(str, args), "--no-progress"])


def invoke_in_process(tiny):
    """The container's input_fn -> predict_fn -> output_fn, as LocalClipBackend.invoke runs them."""
    return lambda body, content_type, accept: tiny.invoke(body, content_type, accept)[0]


def test_images_from_an_s3_prefix_through_a_transform_job(aws, tmp_path, tiny):
    s3, sm = aws
    folder = tmp_path / "shapes"
    names = upload_pictures(s3, BUCKET, folder)
    out = tmp_path / "photos.parquet"
    options = ["--engine", "batch-transform", "--work-uri", f"s3://{BUCKET}/jobs/", "--output", out]
    options += ["--instance-type", "ml.g5.xlarge", "--instance-count", "2", "--max-concurrent-transforms", "3"]
    assert run(f"s3://{BUCKET}/photos/", *options, "--no-wait") == 0

    state = json.loads((tmp_path / "photos.parquet.transform.json").read_text())
    job = sm.describe_transform_job(TransformJobName=state["job_name"])
    assert job["ModelName"] == "omnisearch-embed-model"  # the stack endpoint's model
    assert job["TransformInput"]["ContentType"] == "application/x-image"
    assert job["TransformInput"]["SplitType"] == "None"
    assert job["TransformInput"]["DataSource"]["S3DataSource"]["S3DataType"] == "ManifestFile"
    assert job["TransformOutput"]["Accept"] == "application/jsonlines"
    assert job["TransformResources"] == {"InstanceType": "ml.g5.xlarge", "InstanceCount": 2}
    assert job["MaxConcurrentTransforms"] == 3 and job["MaxPayloadInMB"] == 6
    manifest = json.loads(
        s3.get_object(Bucket=BUCKET, Key=state["job_name"].join(["jobs/", "/manifest.json"]))["Body"].read()
    )
    assert manifest[0] == {"prefix": f"s3://{BUCKET}/photos/"} and sorted(manifest[1:]) == sorted([*names, BROKEN])

    assert run_job(sm, s3, state["job_name"], invoke_in_process(tiny)) == {"succeeded": 9, "failed": 0}
    assert run(f"s3://{BUCKET}/photos/", *options) == 1  # attaches, joins; the broken picture failed
    table = pq.read_table(out)
    assert table.column("id").to_pylist() == names
    assert table.column("source").to_pylist() == [f"s3://{BUCKET}/photos/{n}" for n in names]
    expected = np.asarray(tiny.embed_images([(folder / n).read_bytes() for n in names]).vectors, np.float32)
    np.testing.assert_allclose(store_module.vectors(table), expected, atol=1e-5)
    (error,) = [json.loads(x) for x in (tmp_path / "photos.parquet.errors.jsonl").read_text().splitlines()]
    assert error["id"] == BROKEN and error["code"] == "invalid_image"
    assert not (tmp_path / "photos.parquet.transform.json").exists()

    # a re-run stages nothing but the broken picture again: everything else is in the file by its ETag
    assert run(f"s3://{BUCKET}/photos/", *options, "--no-wait") == 0
    again = json.loads((tmp_path / "photos.parquet.transform.json").read_text())
    assert list(again["outputs"]) == [BROKEN]


def test_texts_go_as_json_lines_and_join_back_by_id(aws, tmp_path, tiny):
    s3, sm = aws
    captions = tmp_path / "captions.txt"
    lines = make_captions(captions)
    out = tmp_path / "captions.parquet"
    options = [captions, "--output", out, "--engine", "batch-transform", "--work-uri", f"s3://{BUCKET}/jobs"]
    options += ["--model-name", "omnisearch-embed-model", "--allow-errors"]
    assert run(*options, "--no-wait") == 0
    state = json.loads((tmp_path / "captions.parquet.transform.json").read_text())
    job = sm.describe_transform_job(TransformJobName=state["job_name"])
    assert job["TransformInput"]["ContentType"] == "application/jsonlines"
    assert (job["TransformInput"]["SplitType"], job["BatchStrategy"], job["MaxPayloadInMB"]) == (
        "Line",
        "MultiRecord",
        1,
    )
    assert job["TransformOutput"]["AssembleWith"] == "Line"
    assert int(job["Environment"]["TS_MAX_RESPONSE_SIZE"]) > 6 * 1024 * 1024  # answers outgrow TorchServe's default

    run_job(sm, s3, state["job_name"], invoke_in_process(tiny))
    assert run(*options) == 0
    table = pq.read_table(out)
    good = [line for line in lines if line]
    assert table.column("text").to_pylist() == good  # the text rode along in the saved plan
    assert table.column("truncated").to_pylist() == [False] * (len(good) - 1) + [True]
    expected = np.asarray(tiny.embed_texts(good).vectors, np.float32)
    np.testing.assert_allclose(store_module.vectors(table), expected, atol=1e-5)


def test_a_failed_job_keeps_what_it_wrote_and_reports_the_rest(aws, tmp_path, tiny):
    s3, sm = aws
    folder = tmp_path / "shapes"
    names = upload_pictures(s3, BUCKET, folder)
    out = tmp_path / "p.parquet"
    options = [
        f"s3://{BUCKET}/photos/",
        "--output",
        out,
        "--engine",
        "batch-transform",
        "--work-uri",
        f"s3://{BUCKET}/j/",
    ]
    assert run(*options, "--no-wait") == 0
    state = json.loads((tmp_path / "p.parquet.transform.json").read_text())
    # a container that fails every broken picture's request (the old contract), as a real-time endpoint would
    strict = lambda body, content_type, accept: tiny.invoke(body, content_type, "application/json")[0]  # noqa: E731
    assert run_job(sm, s3, state["job_name"], lambda b, c, a: _lines(strict(b, c, a))) == {"succeeded": 8, "failed": 1}
    assert run(*options) == 1
    assert pq.read_table(out).column("id").to_pylist() == names
    (error,) = [json.loads(x) for x in (tmp_path / "p.parquet.errors.jsonl").read_text().splitlines()]
    assert error["id"] == BROKEN and error["code"] == "no_output"


def _lines(json_body: bytes) -> bytes:
    """A real-time JSON answer for one image rewritten as the one output line the join reads."""
    import base64

    doc = json.loads(json_body)
    vector = np.asarray(doc["embeddings"][0], dtype="<f4")
    line = {
        "model": doc["model"],
        "dimension": doc["dimension"],
        "embedding": base64.b64encode(vector.tobytes()).decode(),
    }
    return json.dumps(line).encode() + b"\n"


def test_wait_polls_until_the_job_ends_and_reports_progress(aws):
    s3, _ = aws
    sm = boto3.client("sagemaker", region_name="us-east-1")
    plan = {"job_name": "j", "output_uri": f"s3://{BUCKET}/out/", "outputs": {"a.png": ["a.png"], "b.png": ["b.png"]}}
    seen = []
    with Stubber(sm) as stub:
        for status in ("InProgress", "InProgress", "Completed"):
            stub.add_response("describe_transform_job", _job(status), {"TransformJobName": "j"})
        s3.put_object(Bucket=BUCKET, Key="out/a.png.out", Body=b"{}\n")
        job = bt.wait(sm, s3, plan, 0, lambda done, expected, status: seen.append((done, expected, status)))
        stub.assert_no_pending_responses()
    assert job["TransformJobStatus"] == "Completed" and seen == [(1, 2, "InProgress")] * 2 + [(1, 2, "Completed")]


def _job(status: str) -> dict:
    return {
        "TransformJobName": "j",
        "TransformJobArn": "arn:aws:sagemaker:us-east-1:123456789012:transform-job/j",
        "TransformJobStatus": status,
        "ModelName": "m",
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/in/"}}},
        "TransformResources": {"InstanceType": "ml.g4dn.xlarge", "InstanceCount": 1},
        "CreationTime": "2026-01-01T00:00:00Z",
    }
