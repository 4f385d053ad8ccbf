"""Shared test helpers: API Gateway events (events.py) and a deterministic Backend (backends.py)."""
