"""Typed reads of environment variables: the one place that decides what a valid setting looks like.

Every reader takes the mapping to read (``os.environ`` or a test's dict), the variable and its default, and
raises :class:`ConfigError` naming the variable for any value it cannot use, so a bad deployment fails at
start instead of serving with a silently wrong setting. Unset, or empty for numbers, means the default.

Standard library only, and one file for every process: it ships in model.tar.gz's code/ (the model code and
the serving container read it as a sibling), and the core reads this same file as ``omnisearch_embed.env``
(a symbolic link, which the layer build copies as the file).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping
from types import ModuleType

# The words every switch accepts, in the environment and in request options alike (any case).
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})
# The names this one file is imported under: the core's symlink, the model code as a package, code/ on
# sys.path (the toolkit), and an archive's code/ imported as a package of its own (``<package>.clip_env``).
_NAMES = ("omnisearch_embed.env", "model_code.code.clip_env", "clip_env")


class ConfigError(ValueError):
    """A setting read at cold start is invalid; raised once, before serving, never per request."""


def _first_loaded(own: type[ValueError]) -> type[ValueError]:
    """The ConfigError of the copy of this file that loaded first in this process, else ``own``.

    Each name above runs this file again, and each run's ``class`` statement makes a new class, which an
    ``except`` naming another copy's class would not catch (a bad CLIP_ENGINE raised by the model code, caught
    as the core's ConfigError). Every copy after the first takes the first one's class instead, so there is
    one ConfigError per process, whichever name raises it and whichever name catches it. Only module
    dictionaries are read: no lazy module's ``__getattr__`` runs.
    """
    others = [name for name in list(sys.modules) if name != __name__ and (name in _NAMES or name.endswith(".clip_env"))]
    for name in sorted(others, key=lambda n: (n not in _NAMES, n)):
        module = sys.modules.get(name)
        found = module.__dict__.get("ConfigError") if isinstance(module, ModuleType) else None
        if isinstance(found, type) and issubclass(found, ValueError) and found.__name__ == own.__name__:
            return found
    return own


ConfigError = _first_loaded(ConfigError)  # type: ignore[misc]  # one class per process (see above)


def env_str(env: Mapping[str, str], key: str, default: str = "", *, strip: bool = True) -> str:
    raw = env.get(key, default)
    return raw.strip() if strip else raw


def env_choice(env: Mapping[str, str], key: str, default: str, choices: tuple[str, ...]) -> str:
    """One of ``choices`` (any case); unset or empty is ``default``."""
    raw = env.get(key, "")
    value = raw.strip().lower() or default
    if value not in choices:
        raise ConfigError(f"{key}={raw!r} is not one of {', '.join(choices)}")
    return value


def env_csv(env: Mapping[str, str], key: str) -> tuple[str, ...]:
    """``a, b,,c`` -> ``("a", "b", "c")``."""
    return tuple(part.strip() for part in env.get(key, "").split(",") if part.strip())


def env_bool(env: Mapping[str, str], key: str, default: bool) -> bool:
    """:data:`TRUE_WORDS` or :data:`FALSE_WORDS`; a variable set but empty is false."""
    raw = env.get(key)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS or not value:
        return False
    raise ConfigError(f"{key}={raw!r} is not a boolean (use true or false)")


def _number(env: Mapping[str, str], key: str, parse: Callable[[str], float], kind: str) -> float | None:
    """``parse(value)``, or None when unset or empty; a value ``parse`` refuses is a ConfigError."""
    raw = env.get(key)
    if raw is None or raw.strip() == "":
        return None
    try:
        return parse(raw)
    except ValueError as e:
        raise ConfigError(f"{key}={raw!r} is not {kind}") from e


def env_int(env: Mapping[str, str], key: str, default: int, *, minimum: int | None = 1) -> int:
    """An integer of at least ``minimum`` (None: any)."""
    value = _number(env, key, int, "an integer")
    if value is None:
        return default
    if minimum is not None and value < minimum:
        raise ConfigError(f"{key}={value} must be at least {minimum}")
    return int(value)


def env_float(env: Mapping[str, str], key: str, default: float, *, minimum: float | None = None) -> float:
    """A finite number: above zero, or at least ``minimum`` when one is given."""
    value = _number(env, key, float, "a number")
    if value is None:
        return default
    if not math.isfinite(value):
        raise ConfigError(f"{key}={env[key]!r} is not a finite number")
    if minimum is None and value <= 0:
        raise ConfigError(f"{key}={value} must be positive")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{key}={value} must be at least {minimum}")
    return value
