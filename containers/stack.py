"""``make stack``: the whole production path on this machine, up until Ctrl-C.

API (``sam local start-api``) -> the functions in the Lambda python3.13 runtime (or its Debian equivalent) ->
boto3 -> the SageMaker runtime front -> our serving image run as SageMaker runs it, over a model archive.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from pathlib import Path

from containers.engine import ContainerError, Engine, bridge_gateway, require_free_port

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m containers.stack", description=__doc__)
    parser.add_argument("--port", type=int, default=3000, help="the API's port on 127.0.0.1 (default 3000)")
    parser.add_argument(
        "--archive", type=Path, help="model.tar.gz from scripts/package_model.py (default: tiny-shapes)"
    )
    parser.add_argument("--model", default="tiny-shapes", help="CLIP_MODEL the function reports (default tiny-shapes)")
    parser.add_argument(
        "--slim", action="store_true", help="serve with the slim CPU image (Dockerfile.cpu: ONNX Runtime, no torch)"
    )
    parser.add_argument("--sam-venv", type=Path, default=ROOT / ".venv-sam")
    args = parser.parse_args(argv)
    # Also when started in the background, where SIGINT is ignored; the caller's handlers come back at the end.
    previous = {stop: signal.signal(stop, _interrupt) for stop in (signal.SIGINT, signal.SIGTERM)}
    try:
        require_free_port(args.port)
        with tempfile.TemporaryDirectory(prefix="omnisearch-stack-") as work, Engine(Path(work) / "dockerd"):
            return _serve(args, Path(work))
    except ContainerError as e:
        print(f"make stack: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    finally:
        for stop, handler in previous.items():
            signal.signal(stop, handler)


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _serve(args: argparse.Namespace, work: Path) -> int:
    from containers.base_images import dlc_cpu, lambda_runtime, python_slim
    from containers.sam import SamCli
    from containers.serving_image import SLIM_DOCKERFILE, SLIM_TAG, build_serving_image, model_dir, run_as_sagemaker
    from local_server.background import serve_in_thread
    from local_server.sagemaker_emulation import HttpContainer, RuntimeFront

    print("Base images are Debian-built equivalents of AWS's and of python:3.12-slim (containers/base_images.py), "
          "not the official images.")  # fmt: skip
    sam = SamCli(args.sam_venv.absolute(), "x86_64", lambda_runtime("x86_64"))
    sam.build()
    image = (
        build_serving_image(python_slim(), SLIM_TAG, SLIM_DOCKERFILE) if args.slim else build_serving_image(dlc_cpu())
    )
    model = model_dir(args.archive, work)
    gateway = bridge_gateway()
    with run_as_sagemaker(image, model) as endpoint:
        front = RuntimeFront(HttpContainer(endpoint.url))
        with serve_in_thread(front, host=gateway) as front_url:  # type: ignore[arg-type]
            env = {"EmbedFunction": {"USE_SAGEMAKER": "true", "CLIP_MODEL": args.model,
                                     "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": front_url}}  # fmt: skip
            (work / "sam").mkdir()
            with sam.serving("start-api", env, work / "sam", port=args.port) as api:
                print(f"\nOmniSearch Embed (local production stack) on {api}  (Ctrl-C stops it)")
                print(f"  curl -H 'x-api-key: any' -H 'Content-Type: application/json' "
                      f"-d '{json.dumps({'text': 'a red circle'})}' {api}/embed/text", flush=True)  # fmt: skip
                while True:
                    time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
