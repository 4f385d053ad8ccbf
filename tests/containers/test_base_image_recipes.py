"""A base image is rebuilt when its recipe changes, its config (ENV, ENTRYPOINT, CMD), the Lambda bootstrap script
and the python:3.12-slim equivalent's libraries, trimming and pip included, and the DLC stand-in takes pyenv's
newest Python 3.12 by version number. No Docker needed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from containers import base_images


@pytest.fixture
def recipes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """The recipe hash each base-image call would build with (nothing is built)."""
    built: list[str] = []
    monkeypatch.setattr(base_images, "build_once", lambda tag, recipe, build, log=print: built.append(recipe))
    python = tmp_path / ".pyenv/versions/3.12.1/bin/python3.12"
    python.parent.mkdir(parents=True)
    python.touch()
    monkeypatch.setenv("HOME", str(tmp_path))
    return built


def _edited(old: str, new: str) -> Callable[[object], object]:
    def edit(value: object) -> object:
        edited = value.replace(old, new) if isinstance(value, str) else tuple(line.replace(old, new) for line in value)
        assert edited != value, f"{old!r} is no longer in the recipe: update this test"
        return edited

    return edit


@pytest.mark.parametrize(
    ("name", "edit"),
    [
        pytest.param("_BOOTSTRAP", _edited("-m awslambdaric", "-X importtime -m awslambdaric"), id="bootstrap"),
        pytest.param("_LAMBDA_CHANGES", _edited("ENV LANG=C.UTF-8", "ENV LANG=en_US.UTF-8"), id="env"),
        pytest.param(
            "_LAMBDA_CHANGES",
            _edited('ENTRYPOINT ["/var/runtime/bootstrap"]', 'ENTRYPOINT ["/var/runtime/boot"]'),
            id="entrypoint",
        ),
    ],
)
def test_the_lambda_image_is_rebuilt_when_its_bootstrap_or_config_changes(
    name: str, edit: Callable[[object], object], recipes: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    base_images.lambda_runtime("x86_64")
    monkeypatch.setattr(base_images, name, edit(getattr(base_images, name)))
    base_images.lambda_runtime("x86_64")
    assert recipes[0] != recipes[1]


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(_edited("ENV LANG=C.UTF-8", "ENV LANG=en_US.UTF-8"), id="env"),
        pytest.param(_edited('CMD ["python3"]', 'CMD ["python3", "-I"]'), id="cmd"),
    ],
)
def test_the_dlc_stand_in_is_rebuilt_when_its_config_changes(
    edit: Callable[[object], object], recipes: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    base_images.dlc_cpu()
    monkeypatch.setattr(base_images, "_DLC_CHANGES", edit(base_images._DLC_CHANGES))
    base_images.dlc_cpu()
    assert recipes[0] != recipes[1]


def test_the_newest_pyenv_python_312_is_chosen_by_version_number(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for version in ("3.12.2", "3.12.9", "3.12.10", "3.12-dev"):
        python = tmp_path / ".pyenv/versions" / version / "bin/python3.12"
        python.parent.mkdir(parents=True)
        python.touch()
    monkeypatch.setenv("HOME", str(tmp_path))
    assert base_images._pyenv_312() == tmp_path / ".pyenv/versions/3.12.10/bin/python3.12"


@pytest.mark.parametrize(
    ("name", "edit"),
    [
        pytest.param("_SLIM_CHANGES", _edited("ENV LANG=C.UTF-8", "ENV LANG=en_US.UTF-8"), id="env"),
        pytest.param("_SLIM_CHANGES", _edited('CMD ["python3"]', 'CMD ["python3", "-I"]'), id="cmd"),
        pytest.param("_SLIM_LIBS", _edited("libexpat1,", ""), id="libraries"),
        pytest.param("_SLIM_DROPPED", _edited("usr/share/locale", "usr/share/i18n"), id="dropped"),
        pytest.param("_SLIM_IGNORED", _edited("libpython*.a", "libpython*.so"), id="ignored"),
        pytest.param("SLIM_PACKAGES", _edited("pip==26.2.1", "pip==26.2.0"), id="pip"),
    ],
)
def test_the_python_slim_equivalent_is_rebuilt_when_its_recipe_changes(
    name: str, edit: Callable[[object], object], recipes: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    base_images.python_slim()
    monkeypatch.setattr(base_images, name, edit(getattr(base_images, name)))
    base_images.python_slim()
    assert recipes[0] != recipes[1]


def test_the_python_slim_equivalent_is_its_own_image(recipes: list[str]) -> None:
    assert base_images.python_slim() == "omnisearch-equivalent/python:3.12-slim"
    base_images.dlc_cpu()
    assert recipes[0] != recipes[1]
