"""Model side: code/ ships in model.tar.gz (``model_code.code``); tiny_shapes/ is the bundled demo CLIP."""

from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def archive_code(code_dir: str | Path) -> ModuleType:
    """An archive's own ``code/inference.py`` (another copy than this repository's), with its siblings.

    The folder is imported as a package of its own, named after its path, so its modules import each other
    (as ``model_code.code``'s do) and never mix with the repository's copy or another archive's.
    """
    code_dir = Path(code_dir).resolve()
    name = "archive_code_" + hashlib.sha256(str(code_dir).encode()).hexdigest()[:16]
    if name not in sys.modules:
        init = code_dir / "__init__.py"
        if init.is_file():
            spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(code_dir)])
        else:  # an archive from before code/ was a package
            spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
            spec.submodule_search_locations = [str(code_dir)]
        if spec is None:
            raise ImportError(f"cannot import {code_dir} as a package")
        package = importlib.util.module_from_spec(spec)
        sys.modules[name] = package
        try:
            if spec.loader is not None:
                spec.loader.exec_module(package)
        except BaseException:
            del sys.modules[name]
            raise
    return importlib.import_module(f"{name}.inference")
