"""``python -m endpoint_server serve`` as the container runs it: a real process, SIGTERM drains what is in flight.

The model directory's ``code/inference.py`` is replaced by a wrapper around the archive's own: its first
``predict_fn`` call marks a file and blocks on a FIFO until the test writes to it, so the test knows that
one invocation is running and the others are queued (``/ping`` reports the queue) when SIGTERM arrives.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from endpoint_server.cli import main, parse_args
from model_code.code.clip_env import ConfigError
from tests.helpers.keepalive import survives_idle
from tests.helpers.ping import wait_healthy

ROOT = Path(__file__).resolve().parents[2]

WRAPPER = """
import importlib.util, os, sys
from pathlib import Path

_spec = importlib.util.spec_from_file_location(__name__ + "_served", Path(__file__).with_name("served_inference.py"))
_real = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _real
_spec.loader.exec_module(_real)
globals().update({k: v for k, v in vars(_real).items() if not k.startswith("__")})
_gate = Path(os.environ["TEST_GATE_DIR"])
_held = []


def predict_fn(data, model):
    if not _held:
        _held.append(True)
        (_gate / "entered").touch()
        with open(_gate / "release") as fifo:  # blocks until the test opens the FIFO for writing
            fifo.read()
    return _real.predict_fn(data, model)
"""


@pytest.fixture
def gated_model_dir(model_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    target = tmp_path / "model"
    shutil.copytree(model_dir, target)
    (target / "code" / "inference.py").rename(target / "code" / "served_inference.py")
    (target / "code" / "inference.py").write_text(WRAPPER)
    gate = tmp_path / "gate"
    gate.mkdir()
    os.mkfifo(gate / "release")
    return target, gate


@contextmanager
def serving(model: Path, env: dict[str, str] | None = None) -> Iterator[tuple[subprocess.Popen, int]]:
    """``python -m endpoint_server serve`` on a free port, as the container starts it; yields (process, port)."""
    environ = {**os.environ, **(env or {}), "PYTHONPATH": os.pathsep.join([str(ROOT / "layers/common"), str(ROOT)])}
    command = [sys.executable, "-m", "endpoint_server", "serve", "--host", "127.0.0.1", "--port", "0"]
    process = subprocess.Popen(
        [*command, "--model-dir", str(model)],
        cwd=ROOT, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line = process.stdout.readline()
        port = re.search(r"on port (\d+) \(httptools, uvloop\)", line)
        assert port, line + process.stderr.read()
        yield process, int(port.group(1))
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_sigterm_drains_the_invocations_in_flight(gated_model_dir: tuple[Path, Path]) -> None:
    model, gate = gated_model_dir
    with serving(model, {"TEST_GATE_DIR": str(gate)}) as (process, port):
        with (
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client,
            ThreadPoolExecutor(4) as pool,
        ):
            wait_healthy(client)
            texts = ["held", "queued one", "queued two", "queued three"]
            futures = [pool.submit(client.post, "/invocations", json={"texts": [texts[0]]})]
            deadline = time.monotonic() + 30
            while not (gate / "entered").exists():
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.01)
            futures += [pool.submit(client.post, "/invocations", json={"texts": [t]}) for t in texts[1:]]
            while client.get("/ping").json().get("queued") != 3:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            process.send_signal(signal.SIGTERM)
            with open(gate / "release", "w") as fifo:
                fifo.write("go")
            answers = [f.result(60) for f in futures]
        out, err = process.communicate(timeout=60)
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    assert all(a.json()["model"] == "tiny-shapes" and len(a.json()["embeddings"]) == 1 for a in answers)
    assert process.returncode == 0, err
    assert "stopped" in out and "Traceback" not in err


def test_idle_kept_alive_connections_stay_open(model_dir: Path) -> None:
    """SageMaker's front end reuses its connections to the container: one closed under it fails an invocation."""
    with serving(model_dir) as (_process, port):
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            wait_healthy(client)
        assert survives_idle("127.0.0.1", port, "/ping")


def test_the_sagemaker_environment_sets_port_and_model_dir() -> None:
    env = {"SAGEMAKER_BIND_TO_PORT": "9123", "SM_MODEL_DIR": "/srv/model", "ENDPOINT_MAX_BATCH_SIZE": "128"}
    args = parse_args(["serve"], env)
    assert (args.port, args.model_dir, args.max_batch_size) == (9123, "/srv/model", 128)
    defaults = parse_args([], {})
    assert (defaults.command, defaults.port, defaults.model_dir) == ("serve", 8080, "/opt/ml/model")
    with pytest.raises(SystemExit):
        parse_args(["serve", "--max-queue", "0"], {})


@pytest.mark.parametrize(
    ("variable", "kind"),
    [("ENDPOINT_MAX_BATCH_SIZE", "an integer"), ("ENDPOINT_MAX_WAIT_MS", "a number"),
     ("ENDPOINT_MAX_QUEUE", "an integer"), ("ENDPOINT_WORKERS", "an integer"),
     ("SAGEMAKER_BIND_TO_PORT", "an integer")],
)  # fmt: skip
def test_a_bad_number_in_the_environment_is_the_config_error_naming_the_variable(
    variable: str, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ConfigError, match=rf"^{variable}='twelve' is not {kind}$"):
        parse_args(["serve"], {variable: "twelve"})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(variable, "twelve")
        assert main(["serve"]) == 2
    assert capsys.readouterr().err == f"configuration error: {variable}='twelve' is not {kind}\n"
    assert parse_args(["serve"], {variable: " "}) == parse_args(["serve"], {})  # empty: the default


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_model_that_cannot_load_stops_the_process_with_its_reason(
    model_dir: Path, tmp_path: Path, workers: str
) -> None:
    """SageMaker sees a container exit at once; one that answered /ping 503 would be waited on for minutes."""
    broken = tmp_path / "model"
    shutil.copytree(model_dir, broken)
    (onnx,) = [path for path in broken.rglob("*.onnx") if "image" in path.name]
    onnx.write_bytes(b"not an onnx graph")
    with serving(broken, {"ENDPOINT_WORKERS": workers}) as (process, _port):
        try:
            _out, err = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            pytest.fail("the server kept running after its model failed to load")
    assert process.returncode == 1, err
    assert onnx.name in err and "stopped: the model failed to load" in err, err[-3000:]
