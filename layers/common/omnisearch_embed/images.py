"""Image input checks that run before any bytes reach the model.

The order matters: size of the encoded text, then the decoded byte count, then the format from
the file's magic bytes, then the pixel count from the *header*, which Pillow's lazy ``Image.open``
reads without decoding (so a PNG claiming 20000x20000 is refused before a single pixel is decoded),
and only then a real decode of the first frame, which catches truncated and corrupt files as a 422
instead of a model-side 502. Pillow is imported lazily so that the Lambda cold start does not pay for
it on text requests.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from io import BytesIO
from typing import NoReturn

from omnisearch_embed.errors import (
    EmbedError,
    InvalidInputError,
    PayloadTooLargeError,
    UnprocessableError,
    UnsupportedMediaTypeError,
)

ALLOWED_FORMATS = ("png", "jpeg", "webp", "gif")
MEDIA_TYPES = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/webp": "webp", "image/gif": "gif"}
_PIL_NAMES = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP", "gif": "GIF"}
_ALLOWED_TEXT = "PNG, JPEG, WebP or GIF"
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What validation learnt about an accepted image."""

    format: str
    width: int
    height: int
    size_bytes: int


def is_s3_uri(ref: str) -> bool:
    return ref[:5].lower() == "s3://"


def reject_remote_url(ref: str, *, param: str | None = None) -> None:
    """http(s) and every other URL scheme but s3:// are refused: the API never fetches from the web."""
    if _SCHEME.match(ref) and not is_s3_uri(ref):
        scheme = ref.split(":", 1)[0].lower()
        raise InvalidInputError(
            f"{scheme}:// URLs are not fetched; send the image bytes (base64, data URI, multipart) "
            "or an s3:// URI in an allowed bucket",
            code="url_not_supported",
            param=param,
        )


def decode_inline_image(ref: str, *, max_bytes: int, param: str | None = None) -> bytes:
    """Decode base64 or a ``data:image/...;base64,`` URI, refusing oversized input before decoding."""
    payload = ref
    if ref[:5].lower() == "data:":
        header, sep, payload = ref[5:].partition(",")
        parts = [p.strip().lower() for p in header.split(";")]
        if not sep or "base64" not in parts[1:]:
            raise InvalidInputError("a data URI must look like data:image/png;base64,<data>", code="invalid_data_uri")
        media_type = parts[0]
        if not media_type.startswith("image/"):
            raise UnsupportedMediaTypeError(
                f"data URI media type {media_type or '(none)'!r} is not an image", code="unsupported_media_type"
            )
        if media_type not in MEDIA_TYPES:
            raise UnsupportedMediaTypeError(
                f"{media_type} is not accepted; send {_ALLOWED_TEXT}", code="unsupported_image_format", param=param
            )
    return decode_base64(payload, max_bytes=max_bytes, param=param)


def decode_base64(text: str, *, max_bytes: int, param: str | None = None) -> bytes:
    """Standard or URL-safe base64, with or without padding and line breaks."""
    compact = "".join(text.split())
    if not compact:
        raise InvalidInputError("the image is empty", code="empty_image", param=param)
    if len(compact) * 3 // 4 - compact[-2:].count("=") > max_bytes:
        raise PayloadTooLargeError(f"the image is over the {max_bytes}-byte limit", code="image_too_large", param=param)
    if "-" in compact or "_" in compact:
        compact = compact.replace("-", "+").replace("_", "/")
    compact += "=" * (-len(compact) % 4)
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as e:
        raise InvalidInputError(
            "the image is not valid base64 (nor a data URI or s3:// URI)", code="invalid_base64", param=param
        ) from e


_BARE_BASE64 = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")


def bare_base64_image(text: str) -> str | None:
    """The format of ``text`` when it is bare base64 of a PNG/JPEG/GIF/WebP file (by its magic bytes), else None.

    Reads the first 16 characters only (12 bytes, enough for every signature). Spaces inside mean words,
    never base64; line breaks are allowed, as base64 tools wrap their output.
    """
    compact = text.strip().replace("\r", "").replace("\n", "")
    if not _BARE_BASE64.fullmatch(compact):
        return None
    head = compact[:16].replace("-", "+").replace("_", "/")
    return sniff_format(base64.b64decode(head))  # 16 characters of the alphabet always decode


def sniff_format(data: bytes) -> str | None:
    """The allowed format named by the file's magic bytes, or ``None``."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def validate_image(data: bytes, *, max_bytes: int, max_pixels: int, param: str | None = None) -> ImageInfo:
    """Accept only a complete PNG/JPEG/WebP/GIF within the byte and pixel limits, or raise an EmbedError."""
    if not data:
        raise InvalidInputError("the image is empty", code="empty_image", param=param)
    if len(data) > max_bytes:
        raise PayloadTooLargeError(
            f"the image is {len(data)} bytes, over the {max_bytes}-byte limit", code="image_too_large", param=param
        )
    fmt = sniff_format(data)
    if fmt is None:
        _raise_unrecognised(data, param)
    width, height = _decode_first_frame(data, fmt, max_pixels=max_pixels, param=param)
    return ImageInfo(format=fmt, width=width, height=height, size_bytes=len(data))


def _check_pixels(width: int, height: int, *, max_pixels: int, param: str | None) -> None:
    if width <= 0 or height <= 0:
        raise UnprocessableError(f"the image claims a size of {width}x{height}", code="corrupt_image", param=param)
    if width * height > max_pixels:
        raise PayloadTooLargeError(
            f"the image is {width}x{height} = {width * height} pixels, over the {max_pixels}-pixel limit",
            code="image_too_many_pixels",
            param=param,
        )


def _decode_first_frame(data: bytes, fmt: str, *, max_pixels: int, param: str | None) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(BytesIO(data), formats=[_PIL_NAMES[fmt]]) as im:  # lazy: reads the header, no pixels
            _check_pixels(im.width, im.height, max_pixels=max_pixels, param=param)
            im.load()  # decodes the first frame only; animated GIF/WebP frames after it are the model's to skip
            return im.width, im.height
    except EmbedError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:  # the warning, where it is an error
        raise PayloadTooLargeError(
            f"the image header claims over {Image.MAX_IMAGE_PIXELS} pixels, over the {max_pixels}-pixel limit",
            code="image_too_many_pixels",
            param=param,
        ) from e
    except UnidentifiedImageError as e:  # its message names a Python object: keep it out of the response
        raise UnprocessableError(
            f"the {fmt.upper()} header is truncated or corrupt", code="corrupt_image", param=param
        ) from e
    except Exception as e:  # Pillow raises OSError, SyntaxError, ValueError, EOFError... for bad files
        raise UnprocessableError(
            f"the {fmt.upper()} image is truncated or corrupt and cannot be decoded ({e})",
            code="corrupt_image",
            param=param,
        ) from e


def _raise_unrecognised(data: bytes, param: str | None) -> NoReturn:
    """Tell a known-but-refused format (415) from bytes that are not an image at all (422)."""
    from PIL import Image

    try:
        with Image.open(BytesIO(data)) as im:
            name = im.format or "this"
    except Exception:
        name = None
    if name:
        raise UnsupportedMediaTypeError(
            f"{name} images are not accepted; send {_ALLOWED_TEXT}", code="unsupported_image_format", param=param
        )
    raise UnprocessableError(f"the data is not a {_ALLOWED_TEXT} image", code="invalid_image", param=param)
