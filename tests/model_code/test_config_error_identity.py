"""One ConfigError per process, whichever of its names (the core's, the model code's, the toolkit's) loads first.

clip_env.py is imported as ``omnisearch_embed.env`` (a symlink), ``model_code.code.clip_env``, ``clip_env``
(code/ on sys.path) and ``<archive package>.clip_env``: each import runs the file again, and an ``except`` for
one copy's class must still catch a setting refused by another copy. Each order runs in a fresh interpreter.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers.local_server_process import ROOT, child_env

IMPORTS = {
    "core": "import omnisearch_embed.env as m",
    "package": "import model_code.code.clip_env as m",
    "toolkit": "sys.path.insert(0, 'model_code/code'); import clip_env as m",
    "archive": "m = load('archive_code_0123.clip_env')",
}
PROLOGUE = """
import importlib.util, sys
def load(name):
    spec = importlib.util.spec_from_file_location(name, 'model_code/code/clip_env.py')
    module = importlib.util.module_from_spec(spec); sys.modules[name] = module; spec.loader.exec_module(module)
    return module
classes = []
"""


@pytest.mark.parametrize("order", [list(IMPORTS), list(reversed(IMPORTS)), ["toolkit", "core", "archive", "package"]])
def test_every_name_of_the_settings_reader_raises_and_catches_one_class(order: list[str]) -> None:
    lines = [PROLOGUE]
    for name in order:
        lines += [IMPORTS[name], "classes.append(m.ConfigError)"]
    lines += [
        "assert len(set(classes)) == 1, classes",
        "try:\n    m.env_choice({'CLIP_ENGINE': 'bogus'}, 'CLIP_ENGINE', 'auto', ('auto',))",
        "except classes[0] as e:\n    print('caught', type(e).__name__)",
    ]
    done = subprocess.run(
        [sys.executable, "-c", "\n".join(lines)], cwd=ROOT, env=child_env(()), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "caught ConfigError"
