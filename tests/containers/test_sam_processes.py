"""How SamCli starts sam and cleans up after it, with a stand-in for ``sam`` that creates containers as SAM does:

- sam starts with SIGINT at its default action (SAM cleans up on Ctrl-C), without a ``preexec_fn``, which is
  unsafe while other threads run (the runtime front, moto), even when this process ignores SIGINT;
- a run removes the containers it left, and no other: not another run's of this process whose container came
  up during it, not another session's created meanwhile from an image named like SAM's.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from containers.engine import Engine, docker
from containers.sam import RUN_VARIABLE, SamCli

SAM_LIKE_IMAGE = "samcli/omnisearch-test-shell:local"  # SAM's containers run images named samcli/...

FAKE_SAM = """#!{python}
import json, os, signal, socket, subprocess, sys
from pathlib import Path

status = open("/proc/self/status").read()
ignored = int(status.split("SigIgn:")[1].split()[0], 16) & (1 << (signal.SIGINT - 1))
args = sys.argv[1:]
command, work = args[1], Path(args[args.index("--env-vars") + 1]).parent
(work / "sigint-ignored").write_text(str(bool(ignored)))


def create():
    # As SAM passes a declared variable from its environment into the function's container.
    env = "{variable}=" + os.environ.get("{variable}", "")
    made = subprocess.run(["docker", "create", "--env", env, os.environ["FAKE_SAM_IMAGE"], "/bin/sh"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (work / "container").write_text(made)


if command == "invoke":
    if poke := os.environ.get("FAKE_SAM_POKE"):  # a request to the API, whose container comes up meanwhile
        with socket.create_connection(tuple(poke.rsplit("/", 1)[1].split(":"))) as api:
            api.sendall(b"x")
            api.recv(16)
    create()
    print(json.dumps({{"statusCode": 200, "body": "ok"}}))
    print("REPORT RequestId: fake\\tDuration: 1.0 ms", file=sys.stderr)
    raise SystemExit(0)
signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
server = socket.create_server((args[args.index("--host") + 1], int(args[args.index("--port") + 1])))
while True:  # the first request makes the warm container, as SAM's LAZY mode does
    connection, _ = server.accept()
    with connection:
        if connection.recv(1) == b"x":
            create()
            connection.sendall(b"created")
"""


@pytest.fixture
def fake_sam(tmp_path: Path) -> SamCli:
    sam = tmp_path / "venv" / "bin" / "sam"
    sam.parent.mkdir(parents=True)
    sam.write_text(FAKE_SAM.format(python=sys.executable, variable=RUN_VARIABLE))
    sam.chmod(0o755)
    return SamCli(tmp_path / "venv")


@pytest.fixture
def works(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Each run's folder; whatever container a run's stand-in made is removed by its id at the end."""
    made: list[Path] = []

    def work(name: str) -> Path:
        made.append(tmp_path / name)
        made[-1].mkdir()
        return made[-1]

    yield work
    left = [(folder / "container").read_text() for folder in made if (folder / "container").exists()]
    if left:
        docker("rm", "-f", *left, check=False)


def _exists(container: str) -> bool:
    return bool(docker("container", "inspect", "--format", "{{.Id}}", container, check=False).strip())


def test_sam_starts_with_sigint_at_its_default_and_without_preexec_fn(
    fake_sam: SamCli, works: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    started: list[dict[str, Any]] = []
    popen = subprocess.Popen

    def recording(*args: Any, **kwargs: Any) -> subprocess.Popen[Any]:
        if str(fake_sam.sam) in args[0]:
            started.append(kwargs)
        return popen(*args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", recording)
    work = works("api")
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as in a process started in the background
    try:
        with fake_sam.serving("start-api", {}, work, start_timeout=30):
            pass
    finally:
        signal.signal(signal.SIGINT, previous)
    assert (work / "sigint-ignored").read_text() == "False"
    assert len(started) == 1
    assert started[0].get("preexec_fn") is None
    assert started[0].get("start_new_session") or started[0].get("process_group") == 0


def test_a_run_removes_its_own_containers_and_no_other(
    fake_sam: SamCli,
    works: Callable[[str], Path],
    shell_image: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    shell_image(SAM_LIKE_IMAGE)
    monkeypatch.setenv("FAKE_SAM_IMAGE", SAM_LIKE_IMAGE)
    event = tmp_path / "event.json"
    event.write_text("{}")
    api, invoked = works("api"), works("invoke")
    foreign = ""
    try:
        with fake_sam.serving("start-api", {}, api, start_timeout=30) as url:
            foreign = docker("create", SAM_LIKE_IMAGE, "/bin/sh").strip()  # another session's, made meanwhile
            monkeypatch.setenv("FAKE_SAM_POKE", url)
            fake_sam.invoke("EmbedFunction", event, {}, invoked, timeout=60)
            api_container, invoked_container = (api / "container").read_text(), (invoked / "container").read_text()
            assert not _exists(invoked_container)
            assert _exists(api_container), "the invoke removed the container the API's run made meanwhile"
            assert _exists(foreign), "the invoke removed another session's container"
        assert not _exists(api_container)
        assert _exists(foreign), "the API's run removed another session's container"
    finally:
        if foreign:
            docker("rm", "-f", foreign, check=False)


def test_the_containers_sam_starts_carry_their_runs_mark(sam: SamCli, tmp_path: Path) -> None:
    """The real SAM CLI passes the declared variable from its environment into each function's container."""
    before = set(docker("ps", "-a", "--no-trunc", "--quiet").split())
    with sam.serving("start-lambda", {}, tmp_path, warm="EAGER"):  # EAGER: one container per function at start
        started = sorted(set(docker("ps", "-a", "--no-trunc", "--quiet").split()) - before)
        assert started, "SAM started no container"
        described = json.loads(docker("inspect", *started))
    marks = {value for each in described for value in each["Config"]["Env"] if value.startswith(f"{RUN_VARIABLE}=")}
    assert len(marks) == 1, marks  # every container of the run, and one value for the run
    assert len(marks.pop()) > len(f"{RUN_VARIABLE}=")
    assert not set(docker("ps", "-a", "--no-trunc", "--quiet").split()) & set(started)
