"""The page to try the model on: ``GET /`` on the local server, with zero-shot labels and a corpus search.

``--index FILE.parquet`` (from scripts/embed_corpus.py) gives the search its vectors (``corpus_index``);
``routes`` serves the page (``static/``) and its local JSON routes. Nothing here runs in Lambda.
"""

from __future__ import annotations

from local_server.page.routes import PageRoutes

__all__ = ["PageRoutes"]
