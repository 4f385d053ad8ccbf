"""Whether the Weaviate routes are served: ``--weaviate``/``--no-weaviate``, else WEAVIATE_ROUTES, else a default.

The default is on, except when the server has an API key: the routes cannot check one (Weaviate sends
none), so a server that was asked to require a key opens keyless routes only when told to explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping

from omnisearch_embed.env import env_bool

ENV_VAR = "WEAVIATE_ROUTES"


def flag_from_env(raw: str | None) -> bool | None:
    """WEAVIATE_ROUTES as a tri-state: unset or empty -> ``None`` (the default applies)."""
    if raw is None or not raw.strip():
        return None
    return env_bool({ENV_VAR: raw}, ENV_VAR, False)


def routes_enabled(flag: bool | None, api_key: str) -> bool:
    """An explicit choice wins; otherwise on without an API key and off with one."""
    return (not api_key) if flag is None else flag


def choose(flag: bool | None, environ: Mapping[str, str], api_key: str) -> bool:
    """The command line's choice, else the environment's, else the default."""
    return routes_enabled(flag if flag is not None else flag_from_env(environ.get(ENV_VAR)), api_key)
