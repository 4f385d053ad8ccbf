"""A Lambda function's handler module, loaded as the Lambda runtime loads it: ``app`` from the function's folder.

In Lambda, ``functions/<name>/`` is the task root and its handler module is the top-level ``app``. The
benchmarks load it the same way, from its file, so they run as plain scripts (``python bench/x.py``) with
only installed packages on the path. Tests import ``functions.<name>.app`` instead (pytest puts the
repository root on the path); the two are separate module objects, so one process uses one or the other.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

FUNCTIONS_DIR = Path(__file__).resolve().parents[1] / "functions"


def load_function(name: str) -> ModuleType:
    """``functions/<name>/app.py`` imported as ``app``; the handler reads its environment now, as at a cold start."""
    path = FUNCTIONS_DIR / name / "app.py"
    spec = importlib.util.spec_from_file_location("app", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"no Lambda function {name!r} at {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["app"] = module  # as a runtime import would: dataclasses and pydantic look their module up here
    spec.loader.exec_module(module)
    return module
