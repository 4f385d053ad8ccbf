"""The real serving stack on the tiny-shapes archive, started once per session (it takes ~20 s).

Without the serving venv or Java the tests skip with the reason, unless REQUIRE_SERVING_STACK=1 (set by
``make test`` and CI), where they fail: the stack must not silently drop out of CI.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from omnisearch_testkit.toolkit_harness import Toolkit, missing_reason, start_toolkit, template_model_env
from tests.serving_stack.runtime_front import RuntimeFront


def require_serving_stack() -> None:
    """Skip (or fail under REQUIRE_SERVING_STACK=1) when the stack cannot run here."""
    reason = missing_reason()
    if reason is None:
        return
    if os.environ.get("REQUIRE_SERVING_STACK") == "1":
        pytest.fail(f"REQUIRE_SERVING_STACK=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def tiny_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """build_archive's tiny-shapes model.tar.gz with its offline wheels (resolved once, then cached)."""
    require_serving_stack()
    from omnisearch_ops import package_model, wheels

    house = wheels.wheelhouse((package_model.CODE_DIR / "requirements.txt").read_text())
    output = tmp_path_factory.mktemp("archive") / "model.tar.gz"
    return package_model.build_archive("tiny-shapes", "", output, wheels=house)


@pytest.fixture(scope="session")
def online_only_start(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """(error, log) of starting an archive without wheels: what every start was before them, offline."""
    require_serving_stack()
    from omnisearch_ops import package_model

    archive = package_model.build_archive("tiny-shapes", "", tmp_path_factory.mktemp("online") / "model.tar.gz")
    workdir = tmp_path_factory.mktemp("online-toolkit")
    with pytest.raises(RuntimeError) as refused:
        start_toolkit(archive, workdir, {**template_model_env(), "OMP_NUM_THREADS": "1"}).stop()
    return str(refused.value), (workdir / "toolkit.log").read_text(errors="replace")


@pytest.fixture(scope="session")
def toolkit(
    tiny_archive: Path, online_only_start: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Toolkit]:
    """The toolkit serving the tiny-shapes archive with the template's container settings.

    Starts after ``online_only_start``: one toolkit at a time.
    """
    env = {**template_model_env(), "OMP_NUM_THREADS": "1"}  # two cores shared with other tests
    with start_toolkit(tiny_archive, tmp_path_factory.mktemp("toolkit"), env) as running:
        yield running


@pytest.fixture(scope="session")
def runtime_url(toolkit: Toolkit) -> Iterator[str]:
    """A SageMaker runtime in front of the toolkit, for boto3's endpoint_url."""
    with RuntimeFront(toolkit.url) as front:
        yield front.url
