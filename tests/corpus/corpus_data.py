"""A small corpus for the embed_corpus tests: tiny-shapes pictures (every format, a broken file) and captions."""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

from model_code.tiny_shapes.shapes import render

PICTURES = [
    ("red", "circle", "PNG"),
    ("blue", "star", "JPEG"),
    ("green", "square", "WEBP"),
    ("yellow", "triangle", "GIF"),
    ("purple", "circle", "PNG"),
    ("orange", "star", "PNG"),
    ("cyan", "square", "JPEG"),
    ("pink", "triangle", "PNG"),
]
BROKEN = "04-broken.png"  # sorts into the middle of the folder
SUFFIX = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "GIF": "gif"}


def picture_name(index: int, colour: str, shape: str, fmt: str) -> str:
    return f"{index:02d}-{colour}-{shape}.{SUFFIX[fmt]}"


def make_pictures(folder: Path) -> list[str]:
    """Write the pictures, a truncated PNG in the middle and a non-image file; returns the good ids in order."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    names = []
    for index, (colour, shape, fmt) in enumerate(PICTURES):
        buffer = io.BytesIO()
        render(colour, shape, "large", rng).save(buffer, format=fmt)
        name = picture_name(index if index < 4 else index + 1, colour, shape, fmt)
        (folder / name).write_bytes(buffer.getvalue())
        names.append(name)
    good = (folder / names[0]).read_bytes()
    (folder / BROKEN).write_bytes(good[: len(good) // 3])  # a PNG cut short: the header reads, the pixels do not
    (folder / "notes.md").write_text("not a picture\n")
    return sorted(names)


def upload_pictures(s3: Any, bucket: str, folder: Path, prefix: str = "photos/") -> list[str]:
    """``make_pictures`` into ``folder``, each file also put at ``s3://bucket/prefix<name>``; returns the good ids."""
    names = make_pictures(folder)
    for path in sorted(folder.iterdir()):
        s3.put_object(Bucket=bucket, Key=f"{prefix}{path.name}", Body=path.read_bytes())
    return names


def make_captions(path: Path) -> list[str]:
    """One caption per line with a blank line among them (an empty text) and one far past 77 tokens."""
    captions = [f"a photo of a {colour} {shape}" for colour, shape, _ in PICTURES]
    lines = [*captions[:3], "", *captions[3:], "a red circle " * 40]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return lines
