"""Batch Transform's data plane, for tests: what SageMaker does between CreateTransformJob and the .out objects.

moto records a transform job (and calls it Completed at once) but runs nothing. ``run_job`` does the part
AWS documents: read the job's input (a manifest or an S3 prefix), split each object per ``SplitType`` into
records (``Line``: on newlines), group them per ``BatchStrategy`` under ``MaxPayloadInMB``, send each group
to the container with the job's ContentType and Accept, join the answers per ``AssembleWith`` (``Line``: a
newline after each) and write ``<output path>/<name>.out``. An object whose request fails gets no output,
as in AWS. ``invoke(body, content_type, accept) -> body`` is the container: in process, or the real toolkit.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from typing import Any

MB = 1024 * 1024
Invoke = Callable[[bytes, str, str], bytes]


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def _objects(s3: Any, source: dict[str, str]) -> list[tuple[str, str, str]]:
    """(name relative to the input root, bucket, key) of every input object."""
    bucket, key = _split(source["S3Uri"])
    if source["S3DataType"] == "ManifestFile":
        manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        root_bucket, root = _split(manifest[0]["prefix"])
        return [(rel, root_bucket, root + rel) for rel in manifest[1:]]
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=key).get("Contents", [])
    return [(obj["Key"][len(key) :], bucket, obj["Key"]) for obj in listed]


def _requests(data: bytes, split: str, strategy: str, limit: int) -> list[bytes]:
    if split != "Line":
        return [data]
    records = [line for line in data.splitlines(keepends=True) if line.strip()]
    if strategy == "SingleRecord":
        return records
    groups: list[bytes] = []
    current = b""
    for record in records:
        if current and len(current) + len(record) > limit:
            groups.append(current)
            current = b""
        current += record
    return [*groups, current] if current else groups


def run_job(sm: Any, s3: Any, job_name: str, invoke: Invoke) -> dict[str, int]:
    """Run the recorded job's data plane; returns how many objects succeeded and failed."""
    job = sm.describe_transform_job(TransformJobName=job_name)
    source = job["TransformInput"]["DataSource"]["S3DataSource"]
    content_type = job["TransformInput"]["ContentType"]
    split = job["TransformInput"].get("SplitType", "None")
    strategy = job.get("BatchStrategy", "MultiRecord")
    accept = job["TransformOutput"]["Accept"]
    assemble = job["TransformOutput"].get("AssembleWith", "None")
    out_bucket, out_prefix = _split(job["TransformOutput"]["S3OutputPath"])
    counts = {"succeeded": 0, "failed": 0}
    for rel, bucket, key in _objects(s3, source):
        data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        try:
            answers = [
                invoke(body, content_type, accept)
                for body in _requests(data, split, strategy, job["MaxPayloadInMB"] * MB)
            ]
        except Exception:  # the container refused the request: the object gets no output
            counts["failed"] += 1
            continue
        body = b"".join(a + b"\n" if assemble == "Line" else a for a in answers)
        s3.put_object(Bucket=out_bucket, Key=f"{out_prefix}{rel}.out", Body=body)
        counts["succeeded"] += 1
    return counts


def http_invoke(url: str) -> Invoke:
    """POST to a container's /invocations (the toolkit's), raising on any non-2xx answer."""

    def invoke(body: bytes, content_type: str, accept: str) -> bytes:
        request = urllib.request.Request(
            url + "/invocations", data=body, headers={"Content-Type": content_type, "Accept": accept}
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.read()

    return invoke
