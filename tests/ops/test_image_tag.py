"""The serving image's default tag names what would be built: the commit, or the build context's content.

ECR tags are immutable and build_and_push skips a tag that exists, so two different trees must never share
a tag. Each test builds a real git repository with the repository's own Dockerfile.dockerignore.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from omnisearch_ops import image
from omnisearch_ops.paths import ROOT


def git(root: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false", *args]
    return subprocess.run(command, cwd=root, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A checkout with the image's build context (and a file outside it), one commit."""
    root = tmp_path / "repo"
    (root / "endpoint_server").mkdir(parents=True)
    (root / "model_code" / "code").mkdir(parents=True)
    shutil.copy(ROOT / "endpoint_server" / "Dockerfile.dockerignore", root / "endpoint_server")
    (root / "endpoint_server" / "app.py").write_text("ANSWER = 1\n")
    (root / "model_code" / "__init__.py").write_text("")
    (root / "model_code" / "code" / "inference.py").write_text("def model_fn(): ...\n")
    (root / "README.md").write_text("outside the context\n")
    return root


@pytest.fixture
def repo(tree: Path) -> Path:
    git(tree, "init", "-q")
    git(tree, "add", ".")
    git(tree, "commit", "-q", "-m", "first")
    return tree


def test_a_clean_checkout_is_tagged_with_its_commit(repo: Path) -> None:
    assert image.default_tag(repo) == git(repo, "rev-parse", "--short=12", "HEAD")


def test_different_uncommitted_changes_give_different_tags(repo: Path) -> None:
    commit = git(repo, "rev-parse", "--short=12", "HEAD")
    app = repo / "endpoint_server" / "app.py"
    app.write_text("ANSWER = 2\n")
    first = image.default_tag(repo)
    assert re.fullmatch(rf"{commit}-dirty-[0-9a-f]{{12}}", first)
    app.write_text("ANSWER = 3\n")
    second = image.default_tag(repo)
    assert second != first and second.startswith(f"{commit}-dirty-")
    app.write_text("ANSWER = 2\n")
    assert image.default_tag(repo) == first  # the same content, the same tag: nothing pushed twice
    (repo / "model_code" / "code" / "new_module.py").write_text("X = 1\n")  # untracked, but in the context
    assert image.default_tag(repo) not in (first, second)


def test_only_the_build_context_counts(repo: Path) -> None:
    (repo / "README.md").write_text("edited\n")
    outside = image.default_tag(repo)
    (repo / "README.md").write_text("edited again\n")
    (repo / "endpoint_server" / "__pycache__").mkdir()
    (repo / "endpoint_server" / "__pycache__" / "app.cpython-312.pyc").write_bytes(b"\0")
    assert image.default_tag(repo) == outside  # docker never sees either change


def test_a_tree_without_git_is_tagged_by_its_content(tree: Path) -> None:
    first = image.default_tag(tree)
    assert re.fullmatch(r"content-[0-9a-f]{12}", first)
    (tree / "endpoint_server" / "app.py").write_text("ANSWER = 2\n")
    assert image.default_tag(tree) not in (first, "latest")


def test_one_tag_covers_both_images_contexts(repo: Path) -> None:
    """Both images carry EndpointServerImageTag: a file only the slim image's context lets in changes the tag too."""
    (repo / "endpoint_server" / "Dockerfile.cpu.dockerignore").write_text("*\n!endpoint_server/\n!cpu_only/\n")
    (repo / "cpu_only").mkdir()
    (repo / "cpu_only" / "extra.txt").write_text("1\n")
    first = image.default_tag(repo)
    (repo / "cpu_only" / "extra.txt").write_text("2\n")
    assert image.default_tag(repo) != first
    (repo / "cpu_only" / "extra.txt").write_text("1\n")
    assert image.default_tag(repo) == first
