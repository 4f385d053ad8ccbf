"""The SAM CLI on the stack, for local runs: ``sam build`` per architecture, ``sam local invoke`` and ``start-api``.

Local runs use the base image given (``--invoke-image``: an AWS image, or an equivalent from base_images) for the
zip functions, each image function its own built image, and a copy of the built template that declares
``LOCAL_VARIABLES`` on the functions, because ``--env-vars`` sets only variables a function declares; the
deployed template has none of them. Image functions (ModelFunction) are left out of the build unless asked for:
building one needs its base images (containers.model_function) and a template naming them.

The copy also declares ``OMNISEARCH_SAM_RUN``: each ``sam local`` run here gets its own value in sam's environment,
which SAM passes into every container it starts for that run. SAM labels all its containers alike, so that value
is how a run finds, and removes by id, the containers it left, and only those: never another run's, here or in
another process.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from containers.engine import ContainerError, docker, free_port

__all__ = ["LOCAL_VARIABLES", "REPORT_LINE", "RUN_VARIABLE", "Invoked", "SamCli"]

ROOT = Path(__file__).resolve().parents[1]
LOCAL_VARIABLES = ("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", "AWS_ENDPOINT_URL_LAMBDA", "AWS_ENDPOINT_URL")
IMAGE_FUNCTIONS = ("ModelFunction",)
RUN_VARIABLE = "OMNISEARCH_SAM_RUN"
# The emulator's REPORT line for one invoke: Init Duration (a cold start only) and Duration, in ms.
REPORT_LINE = re.compile(r"REPORT RequestId: \S+\s+(?:Init Duration: ([\d.]+) ms\s+)?Duration: ([\d.]+) ms")
_PYENV_PYTHONS = "3.11.7:3.12.1:3.13.0"
# Starts sam with SIGINT at its default action (SAM cleans up on Ctrl-C; a parent started in the background has
# SIGINT ignored, which a child inherits), in a process of its own rather than a preexec_fn, which is unsafe
# while other threads run (the runtime front, moto).
_DEFAULT_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])"
)


@dataclass(frozen=True)
class Invoked:
    """A function's answer to an API Gateway event, and the emulator's REPORT figures (ms)."""

    status: int
    body: str
    headers: dict[str, list[str]]
    init_ms: float
    duration_ms: float
    log: str

    def json(self) -> Any:
        return json.loads(self.body)


class SamCli:
    """``sam`` from ``venv`` on the repository's template (or ``template``, a copy whose relative paths still
    mean the repository's), built into ``.aws-sam/<architecture>`` (or ``build_dir``).

    ``images``: build the image functions too (ModelFunction), which ``template`` must then name base images for.
    """

    def __init__(self, venv: Path, architecture: str = "x86_64", base_image: str = "", *,
                 function_timeout: int | None = None, template: Path | None = None, images: bool = False,
                 build_dir: Path | None = None, **parameters: str) -> None:  # fmt: skip
        self.sam = venv / "bin" / "sam"
        if not self.sam.exists():
            raise ContainerError(f"{self.sam} not found: make sam-venv, or set SAM_VENV to a venv with aws-sam-cli")
        self.architecture, self.base_image, self.function_timeout = architecture, base_image, function_timeout
        self.build_dir = build_dir or ROOT / ".aws-sam" / architecture
        self.template, self.images = template or ROOT / "template.yaml", images
        self.image_uris: dict[str, str] = {}  # image function -> the image sam build made for it
        self.parameters = {"FunctionArchitecture": architecture, "ModelDataUrl": "s3://local/model.tar.gz"}
        self.parameters.update(parameters)

    def env(self, **extra: str) -> dict[str, str]:
        env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}
        env.setdefault("AWS_ACCESS_KEY_ID", "testing")
        env.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
        env.setdefault("PYENV_VERSION", _PYENV_PYTHONS)  # sam build needs python3.13 on PATH
        return {**env, **extra}

    def overrides(self) -> str:
        return " ".join(f"{name}={value}" for name, value in self.parameters.items())

    def build(self) -> Path:
        """``sam build`` for this architecture; returns the local template (see the module's docstring)."""
        command = [str(self.sam), "build", "--template-file", str(self.template), "--base-dir", str(ROOT),
                   "--build-dir", str(self.build_dir), "--parameter-overrides", self.overrides()]  # fmt: skip
        for name in () if self.images else IMAGE_FUNCTIONS:
            command += ["--exclude", name]
        done = subprocess.run(command, cwd=ROOT, env=self.env(), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ContainerError(f"sam build failed:\n{(done.stdout + done.stderr)[-3000:]}")
        template = yaml.safe_load((self.build_dir / "template.yaml").read_text())
        for name in [] if self.images else IMAGE_FUNCTIONS:  # not built: sam local could not start them
            template["Resources"].pop(name, None)
        for name, resource in template["Resources"].items():
            if resource["Type"] == "AWS::Serverless::Function":
                if resource["Properties"].get("PackageType") == "Image":
                    self.image_uris[name] = resource["Properties"].get("ImageUri", "")
                variables = resource["Properties"].setdefault("Environment", {}).setdefault("Variables", {})
                variables.update(dict.fromkeys((*LOCAL_VARIABLES, RUN_VARIABLE), ""))
                if self.function_timeout:  # emulated architectures run far slower than AWS
                    resource["Properties"]["Timeout"] = self.function_timeout
        local = self.build_dir / "template.local.yaml"
        local.write_text(yaml.safe_dump(template, sort_keys=False))
        return local

    def local_args(self, env_vars: dict[str, dict[str, str]], work: Path) -> list[str]:
        """What every ``sam local`` command takes: template, parameters, base image, environment."""
        env_file = work / "env-vars.json"
        env_file.write_text(json.dumps(env_vars))
        args = ["--template-file", str(self.build_dir / "template.local.yaml"), "--parameter-overrides",
                self.overrides(), "--env-vars", str(env_file), "--skip-pull-image"]  # fmt: skip
        for name, image in self.image_uris.items():  # a plain --invoke-image would replace their images too
            args += ["--invoke-image", f"{name}={image}"] if image and self.base_image else []
        return args + (["--invoke-image", self.base_image] if self.base_image else [])

    def invoke(self, function: str, event: Path, env_vars: dict[str, dict[str, str]], work: Path,
               timeout: float = 300) -> Invoked:  # fmt: skip
        """``sam local invoke`` of one API Gateway event; the container is SAM's and gone when this returns."""
        answer, init_ms, duration_ms, log = self.invoke_raw(function, event, env_vars, work, timeout)
        headers = {k: list(v) for k, v in (answer.get("multiValueHeaders") or {}).items()}
        headers.update({k: [v] for k, v in (answer.get("headers") or {}).items()})
        return Invoked(answer["statusCode"], answer.get("body") or "", headers, init_ms, duration_ms, log)

    def invoke_raw(self, function: str, event: Path, env_vars: dict[str, dict[str, str]], work: Path,
                   timeout: float = 300) -> tuple[Any, float, float, str]:  # fmt: skip
        """``sam local invoke`` of any event: (the function's answer, Init Duration ms, Duration ms, SAM's log)."""
        command = [str(self.sam), "local", "invoke", function, "--event", str(event), *self.local_args(env_vars, work)]
        run = uuid.uuid4().hex
        try:
            with _removing_sam_containers(run):
                done = subprocess.run(command, cwd=ROOT, env=self.env(**{RUN_VARIABLE: run}), capture_output=True,
                                      text=True, timeout=timeout, check=False)  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise ContainerError(f"sam local invoke {function} gave no answer within {timeout:.0f} s") from exc
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        report = REPORT_LINE.search(done.stderr)
        if done.returncode != 0 or not lines or report is None:
            raise ContainerError(f"sam local invoke {function} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        return json.loads(lines[-1]), float(report.group(1) or 0), float(report.group(2)), done.stderr

    @contextmanager
    def serving(self, command: str, env_vars: dict[str, dict[str, str]], work: Path, *, host: str = "127.0.0.1",
                port: int = 0, start_timeout: float = 240, warm: str = "EAGER") -> Iterator[str]:  # fmt: skip
        """``sam local start-api`` or ``start-lambda`` with warm containers; yields its URL.

        Stopped with Ctrl-C by its PID; containers it leaves are removed by id.
        """
        port = port or free_port()
        args = [str(self.sam), "local", command, "--host", host, "--port", str(port), "--warm-containers", warm]
        log_path, run = work / f"sam-{command}.log", uuid.uuid4().hex
        with _removing_sam_containers(run), log_path.open("wb") as log:
            process = subprocess.Popen([sys.executable, "-c", _DEFAULT_SIGINT, *args, *self.local_args(env_vars, work)],
                                       cwd=ROOT, env=self.env(**{RUN_VARIABLE: run}), stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
            try:
                _wait_for_port(host, port, process, start_timeout, log_path)
                yield f"http://{host}:{port}"
            finally:
                _stop(process)


@contextmanager
def _removing_sam_containers(run: str) -> Iterator[None]:
    """The containers of ``run`` that SAM leaves (a run killed, a Ctrl-C it did not finish) are removed by id."""
    try:
        yield
    finally:
        if left := _containers_of(run):
            docker("rm", "-f", *left, check=False)


def _containers_of(run: str) -> list[str]:
    """The ids of the containers whose environment holds this run's ``RUN_VARIABLE``."""
    every = docker("ps", "-a", "--no-trunc", "--quiet").split()
    if not every:
        return []
    # check=False: a container removed since the listing is missing, and the others are still described
    described = docker("inspect", "--format", "{{.Id}} {{json .Config.Env}}", *every, check=False).splitlines()
    mark, found = f"{RUN_VARIABLE}={run}", []
    for line in described:
        container, _, env = line.partition(" ")
        if mark in (json.loads(env or "null") or []):
            found.append(container)
    return found


def _wait_for_port(host: str, port: int, process: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ContainerError(f"sam exited ({process.returncode}):\n{log.read_text(errors='replace')[-3000:]}")
        with socket.socket() as probe:
            probe.settimeout(1)
            if probe.connect_ex((host, port)) == 0:
                return
        time.sleep(0.5)
    raise ContainerError(f"sam did not listen on {host}:{port} within {timeout:.0f} s; see {log}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)  # SAM removes its warm containers on Ctrl-C
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
