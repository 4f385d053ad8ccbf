"""scripts/wheels.py: which packages go into the archive, and the requirements file it writes."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.requirements import Requirement

from omnisearch_ops import wheels

ROOT = Path(__file__).resolve().parents[2]


# pip's report metadata, trimmed to what the walk reads.
METADATA = {
    "open-clip-torch": {"name": "open_clip_torch", "version": "3.3.0",
                        "requires_dist": ["torch>=2.0", "torchvision", "regex", "huggingface-hub",
                                          "pytest; extra == 'test'", "timm[extra]>=1.0"]},
    "timm": {"name": "timm", "version": "1.0.31",
             "requires_dist": ["torch", "pyyaml", "colorama; sys_platform == 'win32'", "rich; extra == 'extra'"]},
    "rich": {"name": "rich", "version": "14.0.0", "requires_dist": []},
    "regex": {"name": "regex", "version": "2026.11.19"},
    "huggingface-hub": {"name": "huggingface_hub", "version": "2.4.0",
                        "requires_dist": ["filelock", "typing-extensions; python_version >= '3.9'",
                                          "tomli; python_version < '3.11'"]},
    "filelock": {"name": "filelock", "version": "4.3.1"},
    "typing-extensions": {"name": "typing_extensions", "version": "4.16.0"},
    "pyyaml": {"name": "PyYAML", "version": "6.0.4"},
    "torch": {"name": "torch", "version": "2.6.0", "requires_dist": ["sympy", "filelock", "setuptools"]},
    "torchvision": {"name": "torchvision", "version": "0.21.0", "requires_dist": ["numpy", "pillow"]},
    "sympy": {"name": "sympy", "version": "1.13.1"},
    "setuptools": {"name": "setuptools", "version": "84.2.1"},
}  # fmt: skip


def test_the_closure_leaves_out_the_containers_packages_and_what_only_they_need() -> None:
    pins = wheels._closure([Requirement("open_clip_torch==3.3.0")], METADATA)
    assert pins == [
        "filelock==4.3.1",  # huggingface_hub needs it too: bundled and pinned
        "huggingface_hub==2.4.0",
        "open_clip_torch==3.3.0",
        "PyYAML==6.0.4",
        "regex==2026.11.19",
        "rich==14.0.0",  # timm[extra], as asked for
        "timm==1.0.31",
        "typing_extensions==4.16.0",  # python_version >= 3.9 in the container; tomli (< 3.11) is not
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [("torch==2.6.0\n", "container's own"), ("--index-url https://x\n", "added by the packager"),
     ("Pillow>=10 # images\n", "container's own")],
)  # fmt: skip
def test_requirements_may_not_name_the_containers_packages_or_options(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        wheels.requirements_of(text)


def test_the_repository_requirements_pin_every_line() -> None:
    requirements = wheels.requirements_of((ROOT / "model_code" / "code" / "requirements.txt").read_text())
    assert requirements and all(str(r.specifier).startswith("==") for r in requirements)


def test_the_cache_is_keyed_by_the_requirements_not_their_comments() -> None:
    assert wheels.cache_key("# one\nregex==1\n") == wheels.cache_key("regex==1\n# two\n")
    assert wheels.cache_key("regex==1\n") != wheels.cache_key("regex==2\n")


def test_requirements_text_installs_from_the_wheels_folder_only(tmp_path: Path) -> None:
    house = wheels.Wheelhouse(tmp_path, ("a==1", "b==2"))
    lines = house.requirements_text("# pinned for the DLC\nb==2\n").splitlines()
    assert lines[0] == "# pinned for the DLC"
    assert [line for line in lines if not line.startswith("#")] == ["--no-index", "--find-links wheels", "a==1", "b==2"]
