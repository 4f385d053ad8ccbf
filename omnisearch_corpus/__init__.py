"""The corpus indexer (``omnisearch-embed-corpus``, ``scripts/embed_corpus.py``): sources, engines, the vector file,
the run, Batch Transform.

One job per module: ``sources`` finds items, ``engines`` / ``engine_*`` embed batches of them, ``store`` keeps
the vector file (resumable), ``pipeline`` runs loading, batching and progress, ``batch_transform`` builds,
waits for and joins a SageMaker Batch Transform job (``transform_run`` runs one), and ``estimate`` prices a
run for ``--dry-run``; ``cli`` parses the command line into typed calls. An application beside the core:
it imports ``omnisearch_embed`` and ``omnisearch_ops``' AWS options, never the other way round.
"""
