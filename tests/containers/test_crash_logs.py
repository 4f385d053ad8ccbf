"""A container that dies says why: its stderr, where a Python traceback goes, is in the error, not only its stdout."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from containers.engine import ContainerError, run_once
from containers.serving_image import run_as_sagemaker

# What a server that fails to load its model prints before it exits: a line on stdout, the traceback on stderr.
CRASH = (
    "echo 'starting the server on 8080'; "
    'printf \'Traceback (most recent call last):\\n  File "/opt/serve.py", line 3\\n'
    "RuntimeError: the model did not load\\n' >&2; exit 1"
)


def test_a_serving_container_that_crashes_shows_its_traceback(shell_image: Callable[..., str], tmp_path: Path) -> None:
    entrypoint = json.dumps(["/bin/sh", "-c", CRASH])  # SageMaker's "serve" becomes the script's $0
    image = shell_image("omnisearch-test/crashing-server:local", (f"ENTRYPOINT {entrypoint}",))
    with pytest.raises(ContainerError, match="stopped") as caught, run_as_sagemaker(image, tmp_path, stop_grace=1):
        pass
    assert "Traceback (most recent call last)" in str(caught.value)
    assert "RuntimeError: the model did not load" in str(caught.value)
    assert "starting the server on 8080" in str(caught.value)


def test_run_once_returns_stdout_and_stderr(shell_image: Callable[..., str]) -> None:
    image = shell_image("omnisearch-test/shell:local")
    status, output = run_once(image, ["/bin/sh", "-c", CRASH], [], timeout=60)
    assert status == 1
    assert "starting the server on 8080" in output
    assert "RuntimeError: the model did not load" in output
