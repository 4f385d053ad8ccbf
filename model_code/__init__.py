"""Model side: code/ ships in model.tar.gz; tiny_shapes/ is the bundled demo CLIP and its trainer."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def load_module(path: Path, name: str) -> ModuleType:
    """A file outside any package (inference.py ships alone in model.tar.gz) as module ``name``, once.

    It is in ``sys.modules`` while the file executes (dataclasses look their module up then) and removed
    again if it fails, so a later call retries.
    """
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return module
