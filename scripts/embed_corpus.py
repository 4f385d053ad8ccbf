#!/usr/bin/env python
"""`omnisearch-embed-corpus` from a plain checkout, nothing installed: the same main, in omnisearch_corpus.cli."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers" / "common"), str(ROOT)]

from omnisearch_corpus.cli import main  # noqa: E402

raise SystemExit(main())
