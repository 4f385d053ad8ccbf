"""Each way the container setup can fail says what to install, set or free, and says it at once (never a hang)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from containers import engine as engine_module
from containers.engine import ContainerError, Engine, docker, require_emulation, require_free_port
from containers.serving_image import build_serving_image


def test_no_engine_and_no_dockerd_names_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setattr(engine_module, "engine_answers", lambda timeout=10: False)
    with pytest.raises(ContainerError, match=r"apt-get install docker\.io"):
        Engine(tmp_path, dockerd=None).start()


def test_a_docker_host_that_does_not_answer_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    with pytest.raises(ContainerError, match=r"DOCKER_HOST=unix://.*no-engine\.sock does not answer"):
        Engine(tmp_path).start()


def test_a_dockerd_that_exits_at_start_shows_its_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setattr(engine_module, "engine_answers", lambda timeout=10: False)
    fake = tmp_path / "dockerd"
    fake.write_text("#!/bin/sh\necho 'failed to start daemon: overlay2 is not supported' >&2\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(ContainerError, match=r"dockerd exited at start(?s:.*)overlay2 is not supported"):
        Engine(tmp_path / "state", dockerd=str(fake)).start()


def test_an_engine_already_running_is_used_and_left_alone(engine: Engine, tmp_path: Path) -> None:
    other = Engine(tmp_path).start()
    assert not other.started_here
    other.stop()
    assert docker("info", "--format", "{{.ServerVersion}}").strip()


def test_a_port_in_use_is_named() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        with pytest.raises(ContainerError, match=f"port {port} on 127.0.0.1 is in use"):
            require_free_port(port)


def test_missing_arm64_emulation_names_qemu(tmp_path: Path) -> None:
    with pytest.raises(ContainerError, match="apt-get install qemu-user-static binfmt-support"):
        require_emulation("arm64", binfmt=tmp_path)
    (tmp_path / "qemu-aarch64").write_text("disabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\n")
    with pytest.raises(ContainerError, match="not an enabled entry"):
        require_emulation("arm64", binfmt=tmp_path)
    (tmp_path / "qemu-aarch64").write_text("enabled\ninterpreter /usr/bin/qemu-aarch64-static\nflags: OCF\n")
    require_emulation("arm64", binfmt=tmp_path)


def test_a_failed_image_build_says_so(lambda_image: str) -> None:
    """The serving Dockerfile on a base without pip: the build fails, and the error shows pip's absence."""
    with pytest.raises(ContainerError, match=r"docker build (?s:.*)failed(?s:.*)pip"):
        build_serving_image(lambda_image, tag="omnisearch-embed-endpoint:never")


def test_make_stack_on_a_port_in_use_says_so_and_exits(capsys: pytest.CaptureFixture[str]) -> None:
    from containers.stack import main

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        assert main(["--port", str(held.getsockname()[1])]) == 2
    assert "is in use" in capsys.readouterr().err
