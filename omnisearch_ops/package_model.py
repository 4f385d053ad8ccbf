#!/usr/bin/env python
"""Build, verify and optionally upload the SageMaker model archive (model.tar.gz).

    omnisearch-package-model                                          # tiny-shapes -> build/model.tar.gz
    python scripts/package_model.py                                   # the same, from a checkout
    python scripts/package_model.py --model ViT-B-32 --pretrained openai --upload s3://my-models/clip
    python scripts/package_model.py --model ViT-B-32 --pretrained /data/vit-b-32.pt --output build/vit.tar.gz

The archive holds code/ (inference.py and its siblings, requirements.txt, wheels/), the open_clip config
JSON, the weights file, clip_model.json (model name, model id, file names) that model_fn reads, and both
towers exported to ONNX (text.onnx, image.onnx, clip_onnx.json: ONNX Runtime serves them on the CPU;
--no-onnx leaves them out and torch serves).
code/wheels/ carries every package requirements.txt needs for the container (see omnisearch_ops.wheels), so the
endpoint installs them with no package index; --no-wheels leaves them out (the container then needs PyPI).
The archive is reproducible (fixed timestamps and owners): the same inputs give the same bytes, and the
upload key carries its sha256, so only a changed archive is a new ModelDataUrl. A pretrained *tag* is
fetched through open_clip's own download (needs a machine that can reach the weights). Verification
extracts the archive to a temporary folder and runs its own model_fn -> input_fn -> predict_fn -> output_fn
on a sample text and image. Exit codes: 0 done, 1 failed, 2 usage.
"""

from __future__ import annotations

import argparse
import sys
import tarfile
from pathlib import Path

from model_code.tiny_shapes import CODE_DIR
from omnisearch_embed.settings import TINY_SHAPES_MODEL_ID
from omnisearch_ops import wheels as _wheels
from omnisearch_ops.model_archive import CODE_FILES, MANIFEST, archive_sha256, build_archive, say
from omnisearch_ops.paths import BUILD
from omnisearch_ops.upload_archive import content_key, upload_archive
from omnisearch_ops.verify_archive import sample_png, verify_archive

__all__ = [  # what deploy, the benchmarks and the tests use from here
    "CODE_DIR",
    "CODE_FILES",
    "MANIFEST",
    "archive_sha256",
    "build_archive",
    "content_key",
    "main",
    "sample_png",
    "say",
    "upload_archive",
    "verify_archive",
]
DEFAULT_OUTPUT = BUILD / "model.tar.gz"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="omnisearch-package-model", description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=TINY_SHAPES_MODEL_ID, help="open_clip model name (default tiny-shapes)")
    parser.add_argument("--pretrained", default="", help="pretrained tag or checkpoint path")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"archive path (default {DEFAULT_OUTPUT})")
    parser.add_argument("--upload", metavar="S3_URI", help="upload to s3://bucket/prefix after verifying")
    parser.add_argument(
        "--quick-gelu",
        action=argparse.BooleanOptionalAction,
        help="a weights file's activation: QuickGELU (OpenAI-trained) or not, where name and hash cannot tell",
    )
    parser.add_argument("--no-onnx", action="store_true", help="leave out the ONNX towers: torch serves on the CPU")
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
        path = build_archive(
            args.model, args.pretrained, args.output, wheels=house, onnx=not args.no_onnx, quick_gelu=args.quick_gelu
        )
        if not args.skip_verify:
            verify_archive(path)
        if args.upload:
            say(f"done: {upload_archive(path, args.upload)}")
    except (ValueError, RuntimeError, OSError, tarfile.TarError) as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
