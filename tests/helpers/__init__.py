"""Test-only helpers: a deterministic Backend (backends.py), the Lambda app's wiring, fuzzing, waiting.

What the benchmarks use too (events, images, the container stub server) lives in ``omnisearch_testkit``.
"""
