"""Start and stop the real SageMaker PyTorch serving stack (sagemaker-pytorch-inference + TorchServe) here.

    with start_toolkit("build/model.tar.gz", tmp_path) as toolkit:
        urllib.request.urlopen(toolkit.url + "/ping")

The toolkit runs from its own venv at the container's versions (``SERVING_VENV``, default ``.venv-serving``;
``make serving-venv`` builds it) with its ``serve`` entry point, as the container's entrypoint does, the
archive laid out as SageMaker does (``$SAGEMAKER_BASE_DIR/model``) and pip cut off from every index and
find-links: the archive must install its own requirements from its own wheels. Each start installs them
into a fresh prefix under ``workdir`` (on PYTHONPATH), so the venv stays as the container ships and every
start proves the offline install again.

The toolkit writes /etc/sagemaker-ts.properties and /tmp/.model_server.pid and refuses to run beside
another TorchServe, so one toolkit runs on this machine at a time: starting takes a file lock that the
next caller waits on until ``stop()``. Everything started runs in one new process group, stopped by its id.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
LOCK_PATH = Path("/tmp/omnisearch-serving-toolkit.lock")
GROUP_PATH = Path("/tmp/omnisearch-serving-toolkit.pgid")  # the group the lock holder started
TS_NAMESPACE = "org.pytorch.serve.ModelServer"
UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing answers
PYTHON_VERSION = "3.12"
# What sagemaker-pytorch-inference needs from the host besides its venv.
KEPT_ENV = ("HOME", "LANG", "LC_ALL", "JAVA_HOME", "TZ", "USER")


def serving_venv() -> Path:
    return Path(os.environ.get("SERVING_VENV") or ROOT / ".venv-serving").absolute()  # serve runs elsewhere


def missing_reason(venv: Path | None = None) -> str | None:
    """Why the serving stack cannot start here (no venv, no Java), or None when it can."""
    venv = venv or serving_venv()
    if not (venv / "bin" / "serve").exists():
        return f"no serving-stack venv at {venv} (build it with `make serving-venv`, or set SERVING_VENV)"
    if shutil.which("java") is None:
        return "no java on PATH (apt-get install -y openjdk-17-jre-headless)"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def offline_pip_env() -> dict[str, str]:
    """pip with no configuration files, no find-links and an index that does not answer."""
    return {
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_INDEX_URL": f"{UNREACHABLE}/simple/",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_DEFAULT_TIMEOUT": "3",
        "PIP_RETRIES": "0",
        "HTTP_PROXY": UNREACHABLE,
        "HTTPS_PROXY": UNREACHABLE,
        "http_proxy": UNREACHABLE,
        "https_proxy": UNREACHABLE,
        "HF_HUB_OFFLINE": "1",
    }


def template_model_env() -> dict[str, str]:
    """The literal values of template.yaml's Model container environment (references left out)."""
    from samtranslator.yaml_helper import yaml_parse

    template = yaml_parse((ROOT / "template.yaml").read_text())
    env = template["Resources"]["Model"]["Properties"]["PrimaryContainer"]["Environment"]
    return {k: str(v) for k, v in env.items() if isinstance(v, str | int | float)}


def _model_server_pids() -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if TS_NAMESPACE.encode() in (proc / "cmdline").read_bytes():
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop_group(pgid: int, reap: Callable[[], object] = lambda: None, grace: float = 30.0) -> None:
    """SIGTERM the group (the toolkit forwards it to TorchServe), SIGKILL what is left after ``grace``.

    ``reap`` collects our own child once it exits: a zombie would keep the group alive.
    """
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and (reap() is None or _group_alive(pgid)):
        time.sleep(0.2)
    if _group_alive(pgid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


class Toolkit:
    """A running toolkit: ``url`` (its /ping and /invocations), ``log`` (its output); ``stop()`` ends it.

    ``started_at`` is ``time.monotonic()`` when ``serve`` was launched (after the lock and the extraction).
    """

    def __init__(self, process: subprocess.Popen[bytes], url: str, workdir: Path, log: Path, lock: IO[str]) -> None:
        self.process, self.url, self.workdir, self.log = process, url, workdir, log
        self.started_at = time.monotonic()
        self.pip_prefix = workdir / "pip-prefix"
        self._lock: IO[str] | None = lock

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self._lock is None:
            return
        try:
            _stop_group(self.process.pid, reap=self.process.poll)
            self.process.wait(timeout=5)
        finally:
            GROUP_PATH.unlink(missing_ok=True)
            self._lock.close()  # releases the flock
            self._lock = None

    def __enter__(self) -> Toolkit:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


_held_here: list[IO[str]] = []  # this process's lock, if it holds it: waiting on ourselves would never end


def _acquire_lock() -> IO[str]:
    if any(not held.closed for held in _held_here):
        raise RuntimeError("this process already runs a toolkit: stop it before starting another")
    _held_here.clear()
    lock = open(LOCK_PATH, "a+")  # noqa: SIM115 - held until Toolkit.stop
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"waiting for the serving toolkit lock {LOCK_PATH} (another toolkit is running)", flush=True)
        fcntl.flock(lock, fcntl.LOCK_EX)
    _held_here.append(lock)
    return lock


def _clear_leftovers() -> None:
    """A group a previous lock holder started and never stopped (a killed test run) is stopped now."""
    if GROUP_PATH.is_file():
        try:
            pgid = int(GROUP_PATH.read_text().strip() or 0)
        except ValueError:
            pgid = 0
        if pgid and _group_alive(pgid):
            _stop_group(pgid)
        GROUP_PATH.unlink(missing_ok=True)
    others = _model_server_pids()
    if others:
        raise RuntimeError(f"a TorchServe this harness did not start is running (pid {others}); stop it first")


def _lay_out(model: Path, base: Path) -> None:
    target = base / "model"
    if target.exists():
        shutil.rmtree(target)
    if model.is_dir():
        shutil.copytree(model, target)
    else:
        target.mkdir(parents=True)
        with tarfile.open(model, "r:*") as tar:
            tar.extractall(target, filter="data")


def toolkit_environment(venv: Path, workdir: Path, port: int, extra: Mapping[str, str] | None) -> dict[str, str]:
    """What ``serve`` runs with: no host PIP_* or PYTHONPATH, pip offline, the archive's prefix on the path."""
    prefix_site = workdir / "pip-prefix" / "lib" / f"python{PYTHON_VERSION}" / "site-packages"
    env = {k: os.environ[k] for k in KEPT_ENV if k in os.environ}
    env.update(
        PATH=f"{venv / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        VIRTUAL_ENV=str(venv),
        SAGEMAKER_BASE_DIR=str(workdir / "base"),
        SAGEMAKER_BIND_TO_PORT=str(port),
        SAGEMAKER_PROGRAM="inference.py",
        # Loopback only, and free ports for what TorchServe would otherwise put on fixed ones.
        TS_INFERENCE_ADDRESS=f"http://127.0.0.1:{port}",
        TS_MANAGEMENT_ADDRESS=f"http://127.0.0.1:{free_port()}",
        TS_METRICS_ADDRESS=f"http://127.0.0.1:{free_port()}",
        TS_GRPC_INFERENCE_PORT=str(free_port()),
        TS_GRPC_MANAGEMENT_PORT=str(free_port()),
        PIP_PREFIX=str(workdir / "pip-prefix"),
        PYTHONPATH=str(prefix_site),
        PYTHONUNBUFFERED="1",
        **offline_pip_env(),
    )
    env.update(extra or {})
    return env


def _wait_ready(toolkit: Toolkit, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if toolkit.process.poll() is not None:
            raise RuntimeError(f"serve exited with {toolkit.process.returncode}:\n{toolkit.log_tail()}")
        try:
            with urllib.request.urlopen(toolkit.url + "/ping", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"the toolkit did not answer /ping within {timeout:g} s:\n{toolkit.log_tail()}")


def start_toolkit(
    model: str | Path,
    workdir: str | Path,
    env: Mapping[str, str] | None = None,
    *,
    venv: Path | None = None,
    timeout: float = 300.0,
) -> Toolkit:
    """Serve ``model`` (a model.tar.gz or an extracted folder) with the toolkit; returns once /ping is 200.

    ``env`` adds to or overrides the container environment (e.g. template_model_env(), OMP_NUM_THREADS).
    Blocks while another toolkit runs on this machine. Raises RuntimeError (with the log) if it dies.
    """
    venv = venv or serving_venv()
    reason = missing_reason(venv)
    if reason:
        raise RuntimeError(reason)
    workdir = Path(workdir).resolve()
    lock = _acquire_lock()
    try:
        _clear_leftovers()
        for sub in ("base", "run", "pip-prefix"):
            shutil.rmtree(workdir / sub, ignore_errors=True)
            (workdir / sub).mkdir(parents=True)
        _lay_out(Path(model), workdir / "base")
        port = free_port()
        log = workdir / "toolkit.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [str(venv / "bin" / "serve")],
                cwd=workdir / "run",  # the model store is $PWD/.sagemaker/ts/models
                env=toolkit_environment(venv, workdir, port, env),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        GROUP_PATH.write_text(str(process.pid))
    except BaseException:
        lock.close()
        raise
    toolkit = Toolkit(process, f"http://127.0.0.1:{port}", workdir, log, lock)
    try:
        _wait_ready(toolkit, timeout)
    except BaseException:
        toolkit.stop()
        raise
    return toolkit
