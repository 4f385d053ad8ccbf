#!/usr/bin/env python
"""`omnisearch-package-model` from a plain checkout, nothing installed: omnisearch_ops.package_model's main."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers" / "common"), str(ROOT)]

from omnisearch_ops.package_model import main  # noqa: E402

raise SystemExit(main())
