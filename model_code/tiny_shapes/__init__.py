"""The bundled tiny-shapes CLIP (a demo and test model) and the one loader of model_code/code/inference.py.

inference.py ships alone in model.tar.gz, so it is not a package module: everything in the repo that runs
it in process (the trainer, the evaluation, the local backend, the packager) loads it by path through
:func:`load_inference`, once per process.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from model_code import load_module

MODEL_DIR = Path(__file__).resolve().parent
CONFIG_PATH = MODEL_DIR / "tiny-shapes.json"
CHECKPOINT_PATH = MODEL_DIR / "tiny-shapes.pt"
CODE_DIR = MODEL_DIR.parent / "code"
INFERENCE_PATH = CODE_DIR / "inference.py"
_MODULE_NAME = "omnisearch_model_inference"


def load_inference(path: Path | None = None) -> ModuleType:
    """An inference.py as a module, loaded once per file (kept in sys.modules); default: the repository's.

    Another ``path`` (e.g. one extracted from a model.tar.gz) gets its own module, so both can coexist.
    """
    path = (path or INFERENCE_PATH).resolve()
    name = _MODULE_NAME if path == INFERENCE_PATH else f"{_MODULE_NAME}_{abs(hash(str(path)))}"
    return load_module(path, name)
