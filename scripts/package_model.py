#!/usr/bin/env python
"""Build, verify and optionally upload the SageMaker model archive (model.tar.gz).

    python scripts/package_model.py                                   # tiny-shapes -> build/model.tar.gz
    python scripts/package_model.py --model ViT-B-32 --pretrained openai --upload s3://my-models/clip
    python scripts/package_model.py --model ViT-B-32 --pretrained /data/vit-b-32.pt --output build/vit.tar.gz

The archive holds code/ (inference.py and its siblings, requirements.txt, wheels/), the open_clip config
JSON, the weights file and clip_model.json (model name, model id, file names) that model_fn reads.
code/wheels/ carries every package requirements.txt needs for the container (see _wheels.py), so the
endpoint installs them with no package index; --no-wheels leaves them out (the container then needs PyPI).
The archive is reproducible (fixed timestamps and owners): the same inputs give the same bytes, and the
upload key carries its sha256, so only a changed archive is a new ModelDataUrl. A pretrained *tag* is
fetched through open_clip's own download (needs a machine that can reach the weights). Verification
extracts the archive to a temporary folder and runs its own model_fn -> input_fn -> predict_fn -> output_fn
on a sample text and image. Exit codes: 0 done, 1 failed, 2 usage.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import math
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT / "layers" / "common", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import _wheels  # noqa: E402

from model_code.tiny_shapes import CHECKPOINT_PATH, CODE_DIR, CONFIG_PATH, load_inference  # noqa: E402
from omnisearch_embed.settings import TINY_SHAPES_MODEL_ID, model_id_for  # noqa: E402

DEFAULT_OUTPUT = ROOT / "build" / "model.tar.gz"
MANIFEST = "clip_model.json"  # the name inference.MANIFEST reads
CODE_FILES = (
    "inference.py",
    "clip_inputs.py",
    "clip_images.py",
    "clip_text.py",
    "clip_records.py",
    "requirements.txt",
)  # the whole of code/
SAMPLE_TEXT = "a photo of a red circle"
ARCHIVE_MTIME = 1577836800  # 2020-01-01: every member gets it, so equal inputs give an equal archive


def say(message: str) -> None:
    print(message, flush=True)


def _resolve_weights(model: str, pretrained: str) -> tuple[Path, bool]:
    """(weights file, quick_gelu) for a checkpoint path or an open_clip pretrained tag."""
    import open_clip

    if model == TINY_SHAPES_MODEL_ID and not pretrained:
        return CHECKPOINT_PATH, False
    if not pretrained:
        raise ValueError(f"{model} needs --pretrained (a tag or a checkpoint file); random weights are not served")
    if Path(pretrained).is_file():
        return Path(pretrained), False
    cfg = open_clip.get_pretrained_cfg(model, pretrained)
    if not cfg:
        known = ", ".join(open_clip.list_pretrained_tags_by_model(model)) or "none"
        raise ValueError(f"{pretrained!r} is neither a file nor a pretrained tag of {model} (tags: {known})")
    say(f"fetching {model} weights {pretrained!r} through open_clip (cached after the first time)")
    try:
        return Path(open_clip.download_pretrained(cfg)), bool(cfg.get("quick_gelu"))
    except Exception as e:  # network, hub or cache failures all mean the same thing here
        raise RuntimeError(f"cannot fetch {model} {pretrained!r} weights: {e}") from e


def _model_config(model: str) -> dict[str, Any]:
    import open_clip

    if model == TINY_SHAPES_MODEL_ID:
        return json.loads(CONFIG_PATH.read_text())
    config = open_clip.get_model_config(model)
    if not config:
        raise ValueError(f"unknown open_clip model {model!r}")
    return config


def _member(tar: tarfile.TarFile, name: str, data: io.BufferedIOBase | io.BytesIO, size: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, ARCHIVE_MTIME, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, data)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    _member(tar, name, io.BytesIO(data), len(data))


def _add_file(tar: tarfile.TarFile, name: str, path: Path) -> None:
    with open(path, "rb") as f:
        _member(tar, name, f, path.stat().st_size)


def build_archive(model: str, pretrained: str, output: Path, *, wheels: _wheels.Wheelhouse | None = None) -> Path:
    """Write model.tar.gz for ``model`` + ``pretrained`` (tag, checkpoint path; "" = bundled tiny-shapes).

    With ``wheels`` the archive's requirements.txt installs offline from code/wheels/; without, it is the
    repository's file as is.
    """
    output = Path(output)
    weights, quick_gelu = _resolve_weights(model, pretrained)
    config_name = f"{model}.json"
    manifest = {
        "model": model,
        "pretrained": pretrained if not Path(pretrained).is_file() else Path(pretrained).name,
        "model_id": model_id_for(model, pretrained),
        "config": config_name,
        "weights": weights.name,
        "quick_gelu": quick_gelu,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    say(f"packaging {manifest['model_id']} into {output}")
    requirements = (CODE_DIR / "requirements.txt").read_text()
    with (
        open(output, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name in CODE_FILES:
            say(f"  code/{name}")
            if name == "requirements.txt" and wheels is not None:
                _add_bytes(tar, f"code/{name}", wheels.requirements_text(requirements).encode())
            else:
                _add_file(tar, f"code/{name}", CODE_DIR / name)
        for wheel in wheels.files if wheels is not None else ():
            _add_file(tar, f"code/{_wheels.WHEEL_DIR}/{wheel.name}", wheel)
        if wheels is not None:
            size = sum(w.stat().st_size for w in wheels.files) / 1e6
            say(f"  code/{_wheels.WHEEL_DIR}/ ({len(wheels.files)} wheels, {size:.1f} MB)")
        say(f"  {config_name} (open_clip config)")
        _add_bytes(tar, config_name, json.dumps(_model_config(model), indent=2).encode())
        say(f"  {weights.name} ({weights.stat().st_size / 1e6:.1f} MB of weights)")
        _add_file(tar, weights.name, weights)
        say(f"  {MANIFEST}")
        _add_bytes(tar, MANIFEST, json.dumps(manifest, indent=2).encode())
    say(f"wrote {output} ({output.stat().st_size / 1e6:.1f} MB, sha256 {archive_sha256(output)[:12]}...)")
    return output


def archive_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


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
        inference = load_inference(root / "code" / "inference.py")
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
    result = {
        "model_id": text["model"],
        "dimension": text["dimension"],
        "tokens": text["tokens"][0],
        "text_image_similarity": round(similarity, 4),
        "files": files,
        "seconds": round(time.monotonic() - started, 2),
    }
    say(
        f"verified: {result['model_id']}, dimension {result['dimension']}, "
        f"cos('{SAMPLE_TEXT}', red circle image) = {similarity:.3f}, {result['seconds']} s"
    )
    return result


def content_key(prefix: str, sha256: str) -> str:
    """``prefix/model-<sha256>.tar.gz``; a prefix ending in ``name.tar.gz`` gives ``name-<sha256>.tar.gz``."""
    prefix = prefix.strip("/")
    if prefix.endswith(".tar.gz"):
        return f"{prefix.removesuffix('.tar.gz')}-{sha256}.tar.gz"
    return "/".join(p for p in (prefix, f"model-{sha256}.tar.gz") if p)


def upload_archive(path: Path, s3_uri: str, s3_client: Any = None) -> str:
    """Upload under ``s3://bucket/prefix`` with the archive's sha256 in the key; an archive already there is kept.

    A new archive is then always a new key (a new ModelDataUrl, which CloudFormation rolls out with its
    guardrails), and instances that scale out later still read the archive their model was created with.
    """
    if not s3_uri.startswith("s3://") or not s3_uri[5:].split("/", 1)[0]:
        raise ValueError(f"{s3_uri!r} is not an s3://bucket/prefix URI")
    bucket, _, prefix = s3_uri[5:].partition("/")
    sha256 = archive_sha256(path)
    key = content_key(prefix, sha256)
    if s3_client is None:
        import boto3

        s3_client = boto3.client("s3")
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError

    size, sent, shown = Path(path).stat().st_size, 0, -1
    uri = f"s3://{bucket}/{key}"
    try:
        existing = s3_client.head_object(Bucket=bucket, Key=key)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
            raise RuntimeError(f"cannot check {uri}: {e}") from e
        existing = None
    except BotoCoreError as e:
        raise RuntimeError(f"cannot check {uri}: {e}") from e
    if existing and existing["ContentLength"] == size and existing.get("Metadata", {}).get("sha256") == sha256:
        say(f"{uri} is already uploaded (same sha256): nothing to upload")
        return uri

    def progress(chunk: int) -> None:
        nonlocal sent, shown
        sent += chunk
        step = int(100 * sent / size) // 25 if size else 4
        if step > shown:
            shown = step
            say(f"  uploaded {sent / 1e6:.1f} of {size / 1e6:.1f} MB")

    say(f"uploading {path} to {uri}")
    try:
        s3_client.upload_file(str(path), bucket, key, ExtraArgs={"Metadata": {"sha256": sha256}}, Callback=progress)
    except (BotoCoreError, ClientError, S3UploadFailedError) as e:
        raise RuntimeError(f"upload to {uri} failed: {e}") from e
    return uri


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--model", default=TINY_SHAPES_MODEL_ID, help="open_clip model name (default tiny-shapes)")
    parser.add_argument("--pretrained", default="", help="pretrained tag or checkpoint path")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"archive path (default {DEFAULT_OUTPUT})")
    parser.add_argument("--upload", metavar="S3_URI", help="upload to s3://bucket/prefix after verifying")
    parser.add_argument("--skip-verify", action="store_true", help="do not load the archive to check it")
    wheels = parser.add_argument_group("offline wheels (code/wheels/)")
    wheels.add_argument("--no-wheels", action="store_true", help="leave them out: the container then needs PyPI")
    wheels.add_argument("--wheel-cache", type=Path, default=_wheels.DEFAULT_CACHE, help="resolved sets are kept here")
    wheels.add_argument("--offline", action="store_true", help="use only the wheel cache, never a package index")
    args = parser.parse_args(argv)
    try:
        house = None
        if not args.no_wheels:
            source = (CODE_DIR / "requirements.txt").read_text()
            house = _wheels.wheelhouse(source, cache=args.wheel_cache, offline=args.offline, say=say)
        path = build_archive(args.model, args.pretrained, args.output, wheels=house)
        if not args.skip_verify:
            verify_archive(path)
        if args.upload:
            say(f"done: {upload_archive(path, args.upload)}")
    except (ValueError, RuntimeError, OSError, tarfile.TarError) as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
