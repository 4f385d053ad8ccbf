"""Image header check: the hand-written header parsers that images.py used to carry against Pillow's lazy open.

For each format, per call (median of repeats):
- header: the old ``sniff_format`` + struct parsing of the size, against ``Image.open`` (lazy, header only) + size;
- refusal of a 20000x20000 PNG header (the decompression-bomb probe), old parser against Pillow's open;
- the whole ``validate_image`` (header check, then the first frame decoded), old pipeline against the new one,
  which no longer parses the header twice.

Run: ``.venv/bin/python bench/image_header_check.py [--quick]``. Prints figures and new/old ratios only.
"""

from __future__ import annotations

import argparse
import io
import statistics
import struct
import timeit
from collections.abc import Callable

from PIL import Image

from omnisearch_embed.errors import EmbedError
from omnisearch_embed.images import _PIL_NAMES, sniff_format, validate_image
from omnisearch_testkit.images import png_claiming

LIMITS = {"max_bytes": 4 << 20, "max_pixels": 40_000_000}

# ---- the baseline: the header parsers images.py had before it used Pillow's lazy open -------------------
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JPEG_STANDALONE = {0x01, *range(0xD0, 0xDA)}


def old_header_dimensions(data: bytes, fmt: str) -> tuple[int, int] | None:
    try:
        if fmt == "png":
            return struct.unpack(">II", data[16:24]) if data[12:16] == b"IHDR" else None
        if fmt == "gif":
            return struct.unpack("<HH", data[6:10])
        if fmt == "webp":
            chunk = data[12:16]
            if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
                w, h = struct.unpack("<HH", data[26:30])
                return w & 0x3FFF, h & 0x3FFF
            if chunk == b"VP8L" and data[20:21] == b"\x2f":
                bits = int.from_bytes(data[21:25], "little")
                return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
            if chunk == b"VP8X":
                return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
            return None
        if fmt == "jpeg":
            i = 2
            while i + 4 <= len(data):
                if data[i] != 0xFF:
                    return None
                marker = data[i + 1]
                if marker == 0xFF:
                    i += 1
                elif marker in _JPEG_STANDALONE:
                    i += 2
                elif marker in _JPEG_SOF:
                    height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                    return width, height
                elif marker == 0xDA:
                    return None
                else:
                    i += 2 + struct.unpack(">H", data[i + 2 : i + 4])[0]
    except struct.error:
        return None
    return None


def old_header(data: bytes) -> tuple[int, int] | None:
    fmt = sniff_format(data)
    return old_header_dimensions(data, fmt) if fmt else None


def old_validate(data: bytes) -> tuple[int, int]:
    fmt = sniff_format(data)
    dims = old_header_dimensions(data, fmt) if fmt else None
    if dims is None or dims[0] * dims[1] > LIMITS["max_pixels"]:
        raise ValueError("refused")
    with Image.open(io.BytesIO(data), formats=[_PIL_NAMES[fmt]]) as im:
        im.load()
        return im.size


# ---- the new path -------------------------------------------------------------------------------------------
def new_header(data: bytes) -> tuple[int, int] | None:
    fmt = sniff_format(data)
    if fmt is None:
        return None
    try:
        with Image.open(io.BytesIO(data), formats=[_PIL_NAMES[fmt]]) as im:
            return im.size
    except Image.DecompressionBombError:
        return None


def new_validate(data: bytes) -> tuple[int, int]:
    info = validate_image(data, **LIMITS)
    return info.width, info.height


def refuse(check: Callable[[bytes], object]) -> Callable[[bytes], object]:
    def call(data: bytes) -> object:
        try:
            return check(data)
        except (EmbedError, ValueError):
            return None

    return call


def photo(fmt: str, size: tuple[int, int], **options: object) -> bytes:
    """A noisy, photo-like image (so decoding costs what a real one does), with EXIF-free headers."""
    image = Image.effect_noise(size, 64).convert("RGB")
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def per_call_us(fn: Callable[[bytes], object], data: bytes, number: int, repeats: int) -> float:
    fn(data)  # warm: plugin imports, caches
    times = timeit.repeat(lambda: fn(data), number=number, repeat=repeats)
    return statistics.median(times) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few iterations: checks the script runs")
    args = parser.parse_args()
    number, repeats, decode_number = (20, 3, 2) if args.quick else (2000, 7, 30)
    cases = {
        "PNG 640x480": photo("PNG", (640, 480)),
        "JPEG 640x480": photo("JPEG", (640, 480), quality=90),
        "WebP lossy 640x480": photo("WEBP", (640, 480)),
        "WebP lossless 640x480": photo("WEBP", (640, 480), lossless=True),
        "GIF 640x480": photo("GIF", (640, 480)),
    }
    print(f"{'case':24} {'old µs':>10} {'new µs':>10} {'new/old':>8}")
    for name, data in cases.items():
        assert old_header(data) == new_header(data) == (640, 480), name
        old, new = (per_call_us(fn, data, number, repeats) for fn in (old_header, new_header))
        print(f"{'header ' + name:24} {old:10.1f} {new:10.1f} {new / old:8.1f}")
    bomb = png_claiming(20000, 20000)
    old, new = (per_call_us(refuse(fn), bomb, number, repeats) for fn in (old_validate, new_validate))
    print(f"{'refuse 20000x20000 PNG':24} {old:10.1f} {new:10.1f} {new / old:8.1f}")
    for name, data in cases.items():
        assert old_validate(data) == new_validate(data) == (640, 480), name
        old, new = (per_call_us(fn, data, decode_number, repeats) for fn in (old_validate, new_validate))
        print(f"{'validate ' + name:24} {old:10.1f} {new:10.1f} {new / old:8.2f}")


if __name__ == "__main__":
    main()
