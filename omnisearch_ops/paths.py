"""Where the checkout is: samconfig.toml, build/, model_code/ and .venv-sam are read from it."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMCONFIG = ROOT / "samconfig.toml"
BUILD = ROOT / "build"
