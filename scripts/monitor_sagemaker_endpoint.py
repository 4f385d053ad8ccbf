#!/usr/bin/env python
"""`omnisearch-monitor` from a plain checkout, nothing installed: the same main, in omnisearch_ops.monitor."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers" / "common"), str(ROOT)]

from omnisearch_ops.monitor import main  # noqa: E402

raise SystemExit(main())
