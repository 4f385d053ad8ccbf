"""An archive checked as SageMaker will use it: extracted, then its own handler functions on a text and an image."""

from __future__ import annotations

import io
import json
import math
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from model_code import archive_code
from omnisearch_ops.model_archive import CODE_FILES, MANIFEST, say

SAMPLE_TEXT = "a photo of a red circle"


def sample_png() -> bytes:
    """A red circle on white, 64x64: a picture tiny-shapes and any CLIP recognise (verification, smoke tests)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (64, 64), "white")
    ImageDraw.Draw(image).ellipse((12, 12, 52, 52), fill=(220, 20, 20))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _check_answer(raw: bytes, content_type: str, model_id: str) -> dict[str, Any]:
    if content_type != "application/json":
        raise RuntimeError(f"output_fn answered {content_type!r}, expected application/json")
    answer = json.loads(raw)
    vector = answer["embeddings"][0]
    norm = math.sqrt(sum(v * v for v in vector))
    if answer["model"] != model_id or len(vector) != answer["dimension"] or abs(norm - 1) > 1e-3:
        raise RuntimeError(f"bad answer: model {answer['model']!r}, {len(vector)} values, norm {norm:.4f}")
    return answer


def verify_archive(path: Path) -> dict[str, Any]:
    """Extract to a temporary folder and serve a sample text and image with the archive's own code."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="model-archive-") as tmp:
        with tarfile.open(path, "r:gz") as tar:
            tar.extractall(tmp, filter="data")
        root = Path(tmp)
        missing = [n for n in (*(f"code/{c}" for c in CODE_FILES), MANIFEST) if not (root / n).is_file()]
        if missing:
            raise RuntimeError(f"{path} lacks {', '.join(missing)}")
        manifest = json.loads((root / MANIFEST).read_text())
        say(f"verifying {path}: model_fn on the extracted archive")
        inference = archive_code(root / "code")
        clip = inference.model_fn(tmp)

        def serve(body: bytes, content_type: str) -> dict[str, Any]:
            data = inference.input_fn(body, content_type)
            raw, answer_type = inference.output_fn(inference.predict_fn(data, clip), "application/json")
            return _check_answer(raw, answer_type, manifest["model_id"])

        text = serve(json.dumps({"texts": [SAMPLE_TEXT]}).encode(), "application/json")
        image = serve(sample_png(), "image/png")
        similarity = sum(a * b for a, b in zip(text["embeddings"][0], image["embeddings"][0], strict=True))
        files = sorted(
            str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts
        )
        clip.pool.shutdown(wait=False)
        engine = clip.engine
    result = {
        "model_id": text["model"],
        "dimension": text["dimension"],
        "tokens": text["tokens"][0],
        "text_image_similarity": round(similarity, 4),
        "engine": engine,
        "files": files,
        "seconds": round(time.monotonic() - started, 2),
    }
    say(
        f"verified: {result['model_id']} ({engine}), dimension {result['dimension']}, "
        f"cos('{SAMPLE_TEXT}', red circle image) = {similarity:.3f}, {result['seconds']} s"
    )
    return result
