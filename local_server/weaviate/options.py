"""Whether the Weaviate routes are served: ``--weaviate``/``--no-weaviate``, else WEAVIATE_ROUTES, else a default.

The default is on, except when the server has an API key: the routes cannot check one (Weaviate sends
none), so a server that was asked to require a key opens keyless routes only when told to explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping

from omnisearch_embed.errors import ConfigError

ENV_VAR = "WEAVIATE_ROUTES"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def flag_from_env(raw: str | None) -> bool | None:
    """WEAVIATE_ROUTES as a tri-state: unset or empty -> ``None`` (the default applies)."""
    if raw is None or not raw.strip():
        return None
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{ENV_VAR}={raw!r} is not a boolean (use true or false)")


def routes_enabled(flag: bool | None, api_key: str) -> bool:
    """An explicit choice wins; otherwise on without an API key and off with one."""
    return (not api_key) if flag is None else flag


def choose(flag: bool | None, environ: Mapping[str, str], api_key: str) -> bool:
    """The command line's choice, else the environment's, else the default."""
    return routes_enabled(flag if flag is not None else flag_from_env(environ.get(ENV_VAR)), api_key)
