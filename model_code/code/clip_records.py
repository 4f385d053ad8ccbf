"""SageMaker Batch Transform records: JSON lines of texts in, one JSON line per record out, in order.

Ships next to inference.py in code/. Batch Transform with ``SplitType=Line`` sends records joined by
newlines (``MultiRecord``: as many as fit in ``MaxPayloadInMB``; ``SingleRecord``: one). A record is a JSON
string or an object ``{"id": ..., "text": ...}``. With ``SplitType=None`` and an ``image/*`` content type
each request is one whole image object. With ``Accept: application/jsonlines`` (TransformOutput.Accept)
every record gets one output line, in input order: its vector (``embedding``: base64 of little-endian
float32, the wire protocol's encoding), or an ``error`` with a stable code. A bad record never fails the
request: Batch Transform would fail the whole input file (and mark the job failed) for one unreadable
line or image. Each line ends with a newline, so output assembled with ``AssembleWith=Line`` or ``None``
reads back as the same lines (blank lines carry no record).

Any other Accept gets the real-time answer: the usual JSON (or .npy) body, or the first bad record's
InputError (a 400), exactly as before records existed.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

if __package__:  # see inference.py: a package in the repository, top-level modules under the toolkit
    from .clip_embed import Prediction, embed
    from .clip_inputs import InputError, Request
else:
    from clip_embed import Prediction, embed
    from clip_inputs import InputError, Request

JSONLINES_TYPES = frozenset({"application/jsonlines", "application/x-jsonlines", "application/jsonl"})
JSONLINES_TYPE = "application/jsonlines"


def wants_lines(accept: str | None) -> bool:
    return any(a.split(";")[0].strip().lower() in JSONLINES_TYPES for a in (accept or "").split(","))


@dataclass
class Records:
    """Parsed records: ``items[i]`` is the text or image bytes, or ``None`` where ``errors[i]`` says why."""

    kind: str  # "texts" or "images"
    ids: list[Any] = field(default_factory=list)
    items: list[Any] = field(default_factory=list)
    errors: list[tuple[str, str] | None] = field(default_factory=list)
    normalize: bool = True  # as a Request's
    encoding: str = "float"

    def add(self, record_id: Any, item: Any = None, error: tuple[str, str] | None = None) -> None:
        self.ids.append(record_id)
        self.items.append(item)
        self.errors.append(error)


@dataclass
class RecordsPrediction:
    """A Prediction (same fields: ``vectors`` is count x dimension float32) plus each record's id and error.

    A bad record's row is zeros and its ``errors`` entry says why; ``truncated`` and ``tokens`` are per text
    (``None`` for images, as in a Prediction).
    """

    model_id: str
    vectors: np.ndarray
    ids: list[Any]
    errors: list[tuple[str, str] | None]
    truncated: list[bool] | None = None
    tokens: list[int] | None = None
    encoding: str = "float"


def _record(index: int, line: str) -> tuple[Any, str | None, tuple[str, str] | None]:
    """(id, text, error) of one JSON line."""
    try:
        doc = json.loads(line)
    except ValueError as e:
        return None, None, ("invalid_record", f"record {index} is not valid JSON: {e}")
    if isinstance(doc, str):
        return None, doc, None
    if not isinstance(doc, dict):
        return None, None, ("invalid_record", f'record {index} must be a JSON string or an object with "text"')
    record_id = doc.get("id")
    if isinstance(record_id, (dict, list)):
        return None, None, ("invalid_record", f'record {index}: "id" must be a string or a number')
    text = doc.get("text")
    if not isinstance(text, str):
        return record_id, None, ("invalid_record", f'record {index} has no "text" string')
    return record_id, text, None


def parse_lines(body: bytes | str) -> Records:
    """JSON lines of texts; blank lines are not records (CRLF line ends are accepted)."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, (bytes, bytearray)) else str(body)
    records = Records("texts")
    for line in text.split("\n"):
        line = line.strip()
        if not line:
            continue
        record_id, item, error = _record(len(records.ids), line)
        if item is not None and not item.strip():
            item, error = None, ("empty_text", f"record {len(records.ids)} has an empty text")
        records.add(record_id, item, error)
    return records


def image_record(raw: bytes) -> Records:
    records = Records("images")
    records.add(None, raw)
    return records


def predict(records: Records, clip: Any) -> RecordsPrediction:
    """Embed the good records; a bad image becomes its record's error, not the request's."""
    count = len(records.ids)
    vectors = np.zeros((count, int(clip.dimension)), dtype=np.float32)
    errors = list(records.errors)
    good = [i for i in range(count) if errors[i] is None]
    if records.kind == "images":
        for i in good:
            try:
                vectors[i] = embed(Request("images", [records.items[i]]), clip).vectors[0]
            except InputError as e:
                errors[i] = (getattr(e, "code", "invalid_image"), str(e))
        return RecordsPrediction(clip.model_id, vectors, records.ids, errors)
    truncated, tokens = [False] * count, [0] * count
    if good:
        out = embed(Request("texts", [records.items[i] for i in good]), clip)
        vectors[good] = out.vectors
        for n, i in enumerate(good):
            truncated[i], tokens[i] = out.truncated[n], out.tokens[n]
    return RecordsPrediction(clip.model_id, vectors, records.ids, errors, truncated, tokens)


def render(prediction: RecordsPrediction) -> bytes:
    """One JSON line per record, each ending in a newline."""
    lines = []
    for i, record_id in enumerate(prediction.ids):
        doc: dict[str, Any] = {} if record_id is None else {"id": record_id}
        error = prediction.errors[i]
        if error is not None:
            doc["error"] = {"code": error[0], "message": error[1]}
        else:
            row = np.ascontiguousarray(prediction.vectors[i], dtype="<f4")
            doc.update(model=prediction.model_id, dimension=int(prediction.vectors.shape[1]))
            doc["embedding"] = base64.b64encode(row.tobytes()).decode("ascii")
            if prediction.truncated is not None and prediction.tokens is not None:
                doc.update(truncated=bool(prediction.truncated[i]), tokens=int(prediction.tokens[i]))
        lines.append(json.dumps(doc, separators=(",", ":")) + "\n")
    return "".join(lines).encode("utf-8")


def as_prediction(prediction: RecordsPrediction) -> Prediction:
    """The real-time answer: every record's vector as one Prediction, or the first bad record's InputError."""
    for error in prediction.errors:
        if error is not None:
            raise InputError(error[1], error[0])
    return Prediction(prediction.model_id, prediction.vectors, prediction.truncated, prediction.tokens)
