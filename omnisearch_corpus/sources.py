"""What to embed: images in a folder, a glob or an S3 prefix; texts in a text, JSONL or CSV file (local or S3).

Every item has a stable ``id`` (an image's path below the source root; a text's id column, or
``<file>:<line>``), a ``source`` (where it came from) and, once read, a content ``key`` that resume uses:
``sha256:<hex>`` of the bytes, or ``etag:<etag>`` for S3 objects so nothing is downloaded to skip one.
Items that are bad before any model sees them (an empty text, a record without its id) carry their error.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif"})
TEXT_SUFFIXES = frozenset({".txt", ".jsonl", ".ndjson", ".csv"})
IMAGE, TEXT = "image", "text"


class SourceError(ValueError):
    """The source as a whole cannot be read (no such folder, a CSV without its columns, mixed kinds)."""


@dataclass(frozen=True)
class Item:
    id: str
    source: str
    kind: str
    text: str | None = None  # texts are read with their file
    path: Path | None = None  # a local image
    s3: tuple[str, str] | None = None  # (bucket, key) of an S3 image
    key: str | None = None  # content key, when known without reading (texts, S3 ETags)
    size: int | None = None
    error: tuple[str, str] | None = None  # (code, message): bad before embedding


@dataclass
class Corpus:
    kind: str
    items: list[Item]
    ignored: int = 0  # files that are neither images nor text files
    s3_prefix: tuple[str, str] | None = None  # (bucket, prefix) for an S3 image source
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TextFields:
    id_field: str = "id"
    text_field: str = "text"


def content_key(data: bytes | str) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def parse_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or not uri[5:].split("/", 1)[0]:
        raise SourceError(f"{uri!r} is not an s3://bucket/prefix URI")
    bucket, _, prefix = uri[5:].partition("/")
    return bucket, prefix


def _text_kind(name: str) -> str | None:
    suffix = Path(name).suffix.lower()
    if suffix not in TEXT_SUFFIXES:
        return None
    return {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}.get(suffix, "lines")


def parse_texts(name: str, source: str, data: str, fmt: str, fields: TextFields) -> list[Item]:
    """Items of one text file; ``fmt`` is ``lines``, ``jsonl`` or ``csv``."""
    if fmt == "csv":
        return _csv_items(name, source, data, fields)
    items: list[Item] = []
    for number, line in enumerate(data.splitlines(), start=1):
        where = f"{source}:{number}"
        if fmt == "lines":
            items.append(_text_item(f"{name}:{number}", where, line))
            continue
        if not line.strip():
            continue  # JSON lines: a blank line is no record
        try:
            doc = json.loads(line)
        except ValueError as e:
            items.append(_bad(f"{name}:{number}", where, "invalid_record", f"line {number} is not JSON: {e}"))
            continue
        items.append(_record_item(name, number, where, doc if isinstance(doc, dict) else {}, fields))
    return items


def _csv_items(name: str, source: str, data: str, fields: TextFields) -> list[Item]:
    reader = csv.DictReader(io.StringIO(data))
    missing = [f for f in (fields.id_field, fields.text_field) if f not in (reader.fieldnames or [])]
    if missing:
        raise SourceError(f"{source} has no column {', '.join(map(repr, missing))} (columns: {reader.fieldnames})")
    return [_record_item(name, n, f"{source}:{n + 1}", row, fields) for n, row in enumerate(reader, start=1)]


def _record_item(name: str, number: int, where: str, doc: dict[str, Any], fields: TextFields) -> Item:
    record_id, text = doc.get(fields.id_field), doc.get(fields.text_field)
    if record_id is None or record_id == "" or isinstance(record_id, (dict, list)):
        return _bad(f"{name}:{number}", where, "missing_id", f"record {number} has no {fields.id_field!r}")
    if not isinstance(text, str):
        return _bad(str(record_id), where, "missing_text", f"record {number} has no {fields.text_field!r} string")
    return _text_item(str(record_id), where, text)


def _text_item(item_id: str, where: str, text: str) -> Item:
    if not text.strip():
        return _bad(item_id, where, "empty_text", "the text is empty")
    return Item(item_id, where, TEXT, text=text, key=content_key(text))


def _bad(item_id: str, where: str, code: str, message: str) -> Item:
    return Item(item_id, where, TEXT, error=(code, message))


def _unique(items: Iterable[Item]) -> list[Item]:
    """A second item with an id already seen is an error: one id, one vector."""
    seen: set[str] = set()
    out = []
    for item in items:
        if item.error is None and item.id in seen:
            item = Item(item.id, item.source, item.kind, error=("duplicate_id", f"id {item.id!r} appears again"))
        seen.add(item.id)
        out.append(item)
    return out


def _local_images(root: Path, paths: Iterable[Path]) -> Corpus:
    items, ignored = [], 0
    for path in sorted(paths):
        if not path.is_file():
            continue
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            ignored += 1
            continue
        items.append(Item(path.relative_to(root).as_posix(), str(path), IMAGE, path=path, size=path.stat().st_size))
    return Corpus(IMAGE, items, ignored)


def _glob_root(pattern: str) -> Path:
    parts = []
    for part in Path(pattern).parts:
        if glob.has_magic(part):
            break
        parts.append(part)
    return Path(*parts) if parts else Path(".")


def local_source(source: str, kind: str | None, fields: TextFields) -> Corpus:
    path = Path(source)
    if glob.has_magic(source):
        if kind == TEXT:
            raise SourceError("a glob names images; give one text file for texts")
        return _local_images(_glob_root(source), (Path(p) for p in glob.glob(source, recursive=True)))
    if path.is_dir():
        if kind == TEXT:
            raise SourceError(f"{source} is a folder; texts come from one text, JSONL or CSV file")
        return _local_images(path, path.rglob("*"))
    if not path.is_file():
        raise SourceError(f"{source}: no such file or folder")
    if kind == IMAGE or (kind is None and path.suffix.lower() in IMAGE_SUFFIXES):
        return _local_images(path.parent, [path])
    fmt = _text_kind(path.name) or "lines"
    try:
        data = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise SourceError(f"{source} is not UTF-8 text: {e}") from e
    return Corpus(TEXT, _unique(parse_texts(path.name, str(path), data, fmt, fields)))


def s3_source(uri: str, kind: str | None, fields: TextFields, s3: Any) -> Corpus:
    """Images or text files below an S3 prefix (listed, not downloaded, except the text files)."""
    bucket, prefix = parse_s3_uri(uri)
    images, texts, ignored = [], [], 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            suffix = Path(key).suffix.lower()
            if key.endswith("/"):
                continue
            if suffix in IMAGE_SUFFIXES and kind != TEXT:
                rel = key[len(prefix) :].lstrip("/") if key.startswith(prefix) else key
                etag = "etag:" + obj["ETag"].strip('"')
                source = f"s3://{bucket}/{key}"
                images.append(Item(rel, source, IMAGE, s3=(bucket, key), key=etag, size=obj["Size"]))
            elif _text_kind(key) and kind != IMAGE:
                texts.append(key)
            else:
                ignored += 1
    if images and texts:
        raise SourceError(f"{uri} holds both images and text files: pass --kind image or --kind text")
    if texts:
        items: list[Item] = []
        for key in texts:
            data = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
            name = key[len(prefix) :].lstrip("/") or Path(key).name
            items += parse_texts(name, f"s3://{bucket}/{key}", data, _text_kind(key) or "lines", fields)
        return Corpus(TEXT, _unique(items), ignored)
    return Corpus(kind or IMAGE, images, ignored, s3_prefix=(bucket, prefix))


def discover(source: str, kind: str | None = None, fields: TextFields | None = None, s3: Any = None) -> Corpus:
    fields = fields or TextFields()
    if source.startswith("s3://"):
        if s3 is None:
            import boto3

            s3 = boto3.client("s3")
        return s3_source(source, kind, fields, s3)
    return local_source(source, kind, fields)


def read_item(item: Item, s3: Any = None) -> tuple[bytes | str, str]:
    """(payload, content key): the text, or the image file's bytes."""
    if item.text is not None:
        return item.text, item.key or content_key(item.text)
    if item.path is not None:
        data = item.path.read_bytes()
        return data, content_key(data)
    if item.s3 is not None and s3 is not None:
        data = s3.get_object(Bucket=item.s3[0], Key=item.s3[1])["Body"].read()
        return data, item.key or content_key(data)
    raise ValueError(f"nothing to read for {item.id}")
