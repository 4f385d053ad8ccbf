"""``--engine batch-transform``: a SageMaker Batch Transform job on the stack's model, joined back to ids.

Images: a manifest lists exactly the objects still to embed (an S3 source is read in place; a local folder
is uploaded first); each object is one request (``SplitType=None``, raw bytes, ``application/x-image``)
and its output is ``<key>.out``. Texts: shards of JSON lines ``{"id", "text"}`` (``SplitType=Line``,
``MultiRecord``); the container answers one line per record, echoing the id. ``Accept:
application/jsonlines`` makes an unreadable image an error line instead of a failed job. The job's name
and what each output holds are saved beside the output file first, so an interrupted wait resumes.
"""

from __future__ import annotations

import base64
import json
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from omnisearch_corpus.sources import IMAGE, Item, parse_s3_uri

TEXT_TYPE, IMAGE_TYPE, LINES_TYPE = "application/jsonlines", "application/x-image", "application/jsonlines"
MB = 1024 * 1024
TERMINAL = ("Completed", "Failed", "Stopped")


@dataclass
class TransformOptions:
    instance_type: str = "ml.g4dn.xlarge"
    instance_count: int = 1
    max_payload_mb: int | None = None
    split_type: str | None = None
    batch_strategy: str | None = None
    max_concurrent_transforms: int | None = None
    assemble_with: str = "Line"
    shard_records: int = 50_000
    poll_seconds: float = 30.0
    environment: dict[str, str] = field(default_factory=dict)


@dataclass
class Outcome:
    item_id: str
    vector: np.ndarray | None
    model: str | None = None
    truncated: bool = False
    error: tuple[str, str] | None = None


def model_for_endpoint(sm: Any, endpoint_name: str) -> str:
    """The SageMaker model behind the stack's endpoint (its first production variant)."""
    config = sm.describe_endpoint(EndpointName=endpoint_name)["EndpointConfigName"]
    return sm.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"][0]["ModelName"]


def job_name() -> str:
    return f"omnisearch-embed-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


def _uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def stage(items: list[tuple[Item, str]], kind: str, s3: Any, work_uri: str, name: str, opts: TransformOptions) -> dict:
    """Write the job's input (manifest, or text shards) under ``work_uri``; returns the plan saved as state.

    ``items`` are (item, text-or-"") pairs still to embed. The plan maps each output object name (relative
    to the output prefix, without ``.out``) to the ids it answers for, in order.
    """
    bucket, base = parse_s3_uri(work_uri.rstrip("/") + "/")
    prefix = f"{base}{name}/"
    plan: dict[str, Any] = {"job_name": name, "kind": kind, "output_uri": _uri(bucket, f"{prefix}output/")}
    # a text rides along in the saved plan, so the rows it becomes carry it whenever the job is collected
    plan["items"] = {
        item.id: {"source": item.source, "key": item.key, **({"text": text} if kind != IMAGE else {})}
        for item, text in items
    }
    if kind == IMAGE:
        outputs, lines, largest = {}, [], 0
        root_bucket, root = _image_root(items, s3, bucket, f"{prefix}images/")
        for item, _ in items:
            rel = item.s3[1][len(root) :] if item.s3 else item.id
            outputs[rel] = [item.id]
            lines.append(rel)
            largest = max(largest, item.size or 0)
        manifest = [{"prefix": _uri(root_bucket, root)}, *lines]
        s3.put_object(Bucket=bucket, Key=f"{prefix}manifest.json", Body=json.dumps(manifest).encode())
        plan["input"] = {"S3DataType": "ManifestFile", "S3Uri": _uri(bucket, f"{prefix}manifest.json")}
        plan["content_type"], plan["split_type"] = IMAGE_TYPE, opts.split_type or "None"
        plan["payload_mb"] = opts.max_payload_mb or max(6, math.ceil(largest / MB))
    else:
        outputs, smallest = {}, None
        for start in range(0, len(items), max(1, opts.shard_records)):
            shard = items[start : start + opts.shard_records]
            lines = [json.dumps({"id": item.id, "text": text}, ensure_ascii=False) + "\n" for item, text in shard]
            smallest = min([smallest or 10**9, *(len(line.encode()) for line in lines)])
            rel = f"shard-{start // opts.shard_records:05d}.jsonl"
            s3.put_object(Bucket=bucket, Key=f"{prefix}input/{rel}", Body="".join(lines).encode("utf-8"))
            outputs[rel] = [item.id for item, _ in shard]
        plan["input"] = {"S3DataType": "S3Prefix", "S3Uri": _uri(bucket, f"{prefix}input/")}
        plan["content_type"], plan["split_type"] = TEXT_TYPE, opts.split_type or "Line"
        plan["payload_mb"] = opts.max_payload_mb or 1
        plan["smallest_record"] = smallest or 1
    plan["outputs"] = outputs
    return plan


def _image_root(items: list[tuple[Item, str]], s3: Any, bucket: str, upload_prefix: str) -> tuple[str, str]:
    """(bucket, prefix) the manifest's keys are relative to; local images are uploaded there first."""
    if items and items[0][0].s3 is not None:
        buckets = {item.s3[0] for item, _ in items if item.s3}
        keys = [item.s3[1] for item, _ in items if item.s3]
        if len(buckets) != 1:
            raise ValueError("a Batch Transform manifest reads from one bucket")
        common = keys[0] if len(keys) == 1 else _common_prefix(keys)
        return buckets.pop(), common[: common.rfind("/") + 1]
    for item, _ in items:
        s3.upload_file(str(item.path), bucket, upload_prefix + item.id)
    return bucket, upload_prefix


def _common_prefix(keys: list[str]) -> str:
    first, last = min(keys), max(keys)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return first[:n]


def job_request(plan: dict, opts: TransformOptions, model_name: str) -> dict[str, Any]:
    """CreateTransformJob's arguments for ``plan``."""
    texts = plan["kind"] != IMAGE
    payload_mb = int(plan["payload_mb"])
    env = {"TS_MAX_REQUEST_SIZE": str(payload_mb * MB + MB)}
    if texts:  # the answer is far bigger than the records: size TorchServe's response limit for the worst case
        records = payload_mb * MB // max(1, int(plan["smallest_record"])) + 1
        env["TS_MAX_RESPONSE_SIZE"] = str(records * 6 * 1024 + MB)
    env.update(opts.environment)
    request: dict[str, Any] = {
        "TransformJobName": plan["job_name"],
        "ModelName": model_name,
        "MaxPayloadInMB": payload_mb,
        "Environment": env,
        "TransformInput": {
            "DataSource": {"S3DataSource": plan["input"]},
            "ContentType": plan["content_type"],
            "SplitType": plan["split_type"],
        },
        "TransformOutput": {
            "S3OutputPath": plan["output_uri"],
            "Accept": LINES_TYPE,
            "AssembleWith": opts.assemble_with,
        },
        "TransformResources": {"InstanceType": opts.instance_type, "InstanceCount": opts.instance_count},
    }
    strategy = opts.batch_strategy or ("MultiRecord" if texts else None)
    if strategy:
        request["BatchStrategy"] = strategy
    concurrent = opts.max_concurrent_transforms or (2 if texts else 4)
    request["MaxConcurrentTransforms"] = concurrent
    return request


def _output_keys(s3: Any, output_uri: str) -> dict[str, str]:
    """Output object name (relative, without ``.out``) -> S3 key."""
    bucket, prefix = parse_s3_uri(output_uri)
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            if obj["Key"].endswith(".out"):
                found[obj["Key"][len(prefix) : -len(".out")]] = obj["Key"]
    return found


def wait(sm: Any, s3: Any, plan: dict, poll_seconds: float, on_progress: Callable[[int, int, str], None]) -> dict:
    """Poll until the job ends; ``on_progress(outputs written, outputs expected, status)`` after each poll."""
    expected = len(plan["outputs"])
    while True:
        job = sm.describe_transform_job(TransformJobName=plan["job_name"])
        status = job["TransformJobStatus"]
        on_progress(len(_output_keys(s3, plan["output_uri"])), expected, status)
        if status in TERMINAL:
            return job
        time.sleep(poll_seconds)


def _match(rel: str, found: dict[str, str]) -> str | None:
    if rel in found:
        return found[rel]
    tails = [key for name, key in found.items() if name.endswith("/" + rel) or rel.endswith("/" + name)]
    return tails[0] if len(tails) == 1 else None


def _decode(doc: dict[str, Any]) -> Outcome:
    item_id = str(doc.get("id", ""))
    if "error" in doc:
        error = doc["error"] if isinstance(doc["error"], dict) else {}
        return Outcome(item_id, None, error=(error.get("code", "model_error"), error.get("message", "")))
    vector = np.frombuffer(base64.b64decode(doc["embedding"]), dtype="<f4").astype(np.float32)
    if vector.shape[0] != int(doc["dimension"]):
        return Outcome(item_id, None, error=("bad_model_response", "the vector's length is not its dimension"))
    return Outcome(item_id, vector, doc.get("model"), bool(doc.get("truncated", False)))


def collect(s3: Any, plan: dict, failure_reason: str = "") -> list[Outcome]:
    """Every planned id's outcome, read from the job's output; an output that never came is each id's error."""
    found = _output_keys(s3, plan["output_uri"])
    bucket, _ = parse_s3_uri(plan["output_uri"])
    outcomes: list[Outcome] = []
    for rel, ids in plan["outputs"].items():
        key = _match(rel, found)
        if key is None:
            reason = f"the job wrote no output for {rel}" + (f": {failure_reason}" if failure_reason else "")
            outcomes += [Outcome(i, None, error=("no_output", reason)) for i in ids]
            continue
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
        docs = [json.loads(line) for line in body.split("\n") if line.strip()]
        if len(docs) != len(ids):
            reason = f"{rel}.out has {len(docs)} lines for {len(ids)} records"
            outcomes += [Outcome(i, None, error=("bad_output", reason)) for i in ids]
            continue
        for item_id, doc in zip(ids, docs, strict=True):
            outcome = _decode(doc)
            if outcome.item_id and outcome.item_id != item_id:
                outcome = Outcome(item_id, None, error=("bad_output", f"line names id {outcome.item_id!r}"))
            outcome.item_id = item_id
            outcomes.append(outcome)
    return outcomes


def save_state(path: Path, plan: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(plan))
    tmp.replace(path)


def load_state(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None
