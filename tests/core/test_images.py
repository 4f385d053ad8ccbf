"""Image checks: formats, byte and pixel limits before decoding, corrupt files, inline encodings."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image, ImageFile

from omnisearch_embed.errors import EmbedError
from omnisearch_embed.images import (
    decode_inline_image,
    reject_remote_url,
    sniff_format,
    validate_image,
)
from omnisearch_testkit.images import animated, image_bytes, png_claiming, truncated_png, webp_claiming

LIMITS = {"max_bytes": 1 << 20, "max_pixels": 1_000_000}


def refused(call, *args, **kwargs) -> EmbedError:
    with pytest.raises(EmbedError) as info:
        call(*args, **kwargs)
    return info.value


@pytest.mark.parametrize(("fmt", "name"), [("PNG", "png"), ("JPEG", "jpeg"), ("WEBP", "webp"), ("GIF", "gif")])
def test_allowed_formats_pass_with_their_dimensions(fmt: str, name: str) -> None:
    data = image_bytes(fmt, size=(37, 21))
    assert sniff_format(data) == name
    info = validate_image(data, **LIMITS)
    assert (info.format, info.width, info.height, info.size_bytes) == (name, 37, 21, len(data))


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animated_images_validate(fmt: str) -> None:
    assert validate_image(animated(fmt), **LIMITS).format == fmt.lower()


@pytest.mark.parametrize(
    "options",
    [{"lossless": True}, {"lossless": False}, {"save_all": True, "append_images": [Image.new("RGB", (300, 5))]}],
)
def test_every_webp_header_kind_gives_its_size(options: dict) -> None:
    """VP8L (lossless), VP8 (lossy) and VP8X (extended: animation) headers all carry the size."""
    out = io.BytesIO()
    Image.new("RGB", (300, 5)).save(out, "WEBP", **options)
    info = validate_image(out.getvalue(), **LIMITS)
    assert (info.width, info.height) == (300, 5)


@pytest.mark.parametrize(
    ("data", "claims"),
    [
        (png_claiming(20000, 20000), None),
        (png_claiming(8000, 8000), "8000x8000"),
        (webp_claiming(16384, 16384), None),
        (webp_claiming(9000, 9000), "9000x9000"),
    ],
)
def test_over_limit_headers_are_refused_without_decoding(
    monkeypatch: pytest.MonkeyPatch, data: bytes, claims: str | None
) -> None:
    """Pillow's lazy open reads the header; no pixel is decoded (load is never called) for either size.

    20000x20000 and 16384x16384 are past Pillow's own decompression-bomb ceiling, which refuses them inside
    ``Image.open``; the others reach our check with their size read from the header.
    """

    def no_decoding(*args, **kwargs):
        raise AssertionError("an over-limit image must never be decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    error = refused(validate_image, data, max_bytes=1 << 20, max_pixels=40_000_000)
    assert (error.status, error.code) == (413, "image_too_many_pixels")
    assert "40000000-pixel limit" in error.message
    if claims is not None:
        assert claims in error.message


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF"])
def test_the_pixel_limit_applies_to_every_format_before_decoding(monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    data = image_bytes(fmt, size=(64, 64))
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda *a, **k: pytest.fail("decoded"))
    error = refused(validate_image, data, max_bytes=1 << 20, max_pixels=64 * 64 - 1)
    assert error.code == "image_too_many_pixels" and "64x64" in error.message


def test_pixel_limit_is_inclusive() -> None:
    data = image_bytes("PNG", size=(100, 50))
    assert validate_image(data, max_bytes=1 << 20, max_pixels=5000).width == 100
    assert refused(validate_image, data, max_bytes=1 << 20, max_pixels=4999).code == "image_too_many_pixels"


def test_byte_limit() -> None:
    data = image_bytes("PNG")
    error = refused(validate_image, data, max_bytes=len(data) - 1, max_pixels=10**6)
    assert (error.status, error.code) == (413, "image_too_large")


@pytest.mark.parametrize("data", [truncated_png(), image_bytes("PNG")[:30], image_bytes("JPEG")[:200]])
def test_truncated_or_corrupt_is_422(data: bytes) -> None:
    error = refused(validate_image, data, **LIMITS)
    assert (error.status, error.code) == (422, "corrupt_image")
    assert "object at 0x" not in error.message


@pytest.mark.parametrize("fmt", ["BMP", "TIFF"])
def test_known_but_refused_formats_are_415(fmt: str) -> None:
    error = refused(validate_image, image_bytes(fmt), **LIMITS)
    assert (error.status, error.code) == (415, "unsupported_image_format")
    assert fmt in error.message


def test_non_image_bytes_are_422_and_empty_is_400() -> None:
    assert refused(validate_image, b"just some text, no image here", **LIMITS).code == "invalid_image"
    assert refused(validate_image, b"", **LIMITS).code == "empty_image"


def test_data_uri_and_plain_and_urlsafe_base64_decode_to_the_same_bytes() -> None:
    data = image_bytes("PNG") + b"\xfb\xff"  # bytes whose base64 uses + and /
    std = base64.b64encode(data).decode()
    wrapped = "\n".join(std[i : i + 60] for i in range(0, len(std), 60))
    for ref in (std, wrapped, f"data:image/png;base64,{std}", base64.urlsafe_b64encode(data).decode().rstrip("=")):
        assert decode_inline_image(ref, max_bytes=1 << 20) == data


@pytest.mark.parametrize(
    ("ref", "status", "code"),
    [
        ("not base64 at all!", 400, "invalid_base64"),
        ("   ", 400, "empty_image"),
        ("data:image/png,rawbytes", 400, "invalid_data_uri"),
        ("data:text/plain;base64,aGk=", 415, "unsupported_media_type"),
        ("data:image/bmp;base64,aGk=", 415, "unsupported_image_format"),
    ],
)
def test_inline_refusals(ref: str, status: int, code: str) -> None:
    error = refused(decode_inline_image, ref, max_bytes=1 << 20)
    assert (error.status, error.code) == (status, code)


def test_oversized_base64_is_refused_before_decoding() -> None:
    error = refused(decode_inline_image, "A" * 4000, max_bytes=2000)
    assert (error.status, error.code) == (413, "image_too_large")


@pytest.mark.parametrize("url", ["http://example.com/a.png", "HTTPS://example.com/a.png", "file:///etc/passwd"])
def test_urls_other_than_s3_are_refused(url: str) -> None:
    error = refused(reject_remote_url, url)
    assert (error.status, error.code) == (400, "url_not_supported")


def test_s3_uris_and_inline_data_pass_the_url_check() -> None:
    reject_remote_url("s3://bucket/key.png")
    reject_remote_url("data:image/png;base64,aGk=")
