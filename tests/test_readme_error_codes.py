"""Every error code the request path can answer is in README's error list."""

from __future__ import annotations

import re
from pathlib import Path

from omnisearch_embed import errors

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "layers" / "common" / "omnisearch_embed"
# The request path's own checks; the backends' and AWS's codes are server-side and documented with the deployment.
SOURCES = [*sorted((CORE / "api").glob("*.py")), *(CORE / f"{name}.py" for name in ("images", "service", "classify"))]
LITERAL = re.compile(r"""code="([a-z0-9_]+)"|respond\(\s*HTTPStatus\.\w+,\s*"([a-z0-9_]+)\"""")


def documented() -> set[str]:
    return set(re.findall(r"`([a-z0-9_]+)`", (ROOT / "README.md").read_text(encoding="utf-8")))


def test_the_central_body_codes_are_documented() -> None:
    constants = {
        value for name, value in vars(errors).items() if name.startswith("INVALID_") and isinstance(value, str)
    }
    assert constants == {"invalid_json", "invalid_body", "invalid_multipart", "invalid_text"}
    assert constants <= documented()


def test_every_request_path_code_is_documented() -> None:
    raised = {code for path in SOURCES for match in LITERAL.findall(path.read_text()) for code in match if code}
    assert {"missing_file", "validation_error", "route_not_found", "image_too_many_pixels"} <= raised
    assert raised - {"internal_error"} <= documented(), sorted(raised - documented())
