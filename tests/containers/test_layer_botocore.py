"""The layer's boto3 and botocore, inside the Lambda runtime: they shadow the runtime's, and the deadline code works
with them (a read the client would hold for 120 s ends with our own 504 once the request's 3 s are spent)."""

from __future__ import annotations

import json
from pathlib import Path

from containers.engine import run_once
from containers.sam import SamCli
from tests.template.test_layer_requirements import layer_requirements

PROBE = Path(__file__).with_name("deadline_probe.py")


def test_the_deadline_shortens_reads_with_the_layers_botocore(sam: SamCli, lambda_image: str) -> None:
    layer = sam.build_dir / "CommonLayer"
    options = ["-v", f"{layer}:/opt:ro", "-v", f"{PROBE.parent}:/probe:ro", "--entrypoint", "/var/lang/bin/python3"]
    status, output = run_once(lambda_image, ["/probe/deadline_probe.py"], options, timeout=90)
    assert status == 0, output
    found = json.loads(output.strip().splitlines()[-1])
    pins = layer_requirements()
    assert f"boto3=={found['boto3']}" == pins["boto3"] and f"botocore=={found['botocore']}" == pins["botocore"]
    assert found["botocore_file"].startswith("/opt/python/")  # the layer's, ahead of the runtime's own
    assert found["outcome"] in {"backend_timeout", "deadline_exceeded"}, found
    assert found["seconds"] < 60, found  # cut by the deadline, long before the client's own 120 s read timeout
