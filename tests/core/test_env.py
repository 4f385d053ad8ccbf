"""The environment reader: one set of boolean words, and a ConfigError naming the variable for every bad value."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from omnisearch_embed import errors
from omnisearch_embed.env import ConfigError, env_bool, env_csv, env_float, env_int, env_str

KEY = "SOME_SETTING"


@pytest.mark.parametrize("raw", ["1", "true", "TRUE", " yes ", "On"])
def test_true_words(raw: str) -> None:
    assert env_bool({KEY: raw}, KEY, False) is True


@pytest.mark.parametrize("raw", ["0", "false", "No", " off", ""])
def test_false_words(raw: str) -> None:
    assert env_bool({KEY: raw}, KEY, True) is False


def test_unset_means_the_default() -> None:
    assert env_bool({}, KEY, True) is True
    assert env_int({}, KEY, 7) == 7 and env_int({KEY: " "}, KEY, 7) == 7
    assert env_float({}, KEY, 2.5) == 2.5 and env_float({KEY: ""}, KEY, 2.5) == 2.5
    assert env_str({}, KEY, "d") == "d" and env_csv({}, KEY) == ()


@pytest.mark.parametrize(
    ("read", "raw", "says"),
    [
        (lambda e: env_bool(e, KEY, False), "maybe", "is not a boolean"),
        (lambda e: env_bool(e, KEY, False), "2", "is not a boolean"),
        (lambda e: env_int(e, KEY, 1), "twelve", "is not an integer"),
        (lambda e: env_int(e, KEY, 1), "1.5", "is not an integer"),
        (lambda e: env_int(e, KEY, 1), "0", "must be at least 1"),
        (lambda e: env_int(e, KEY, 1, minimum=1024), "1023", "must be at least 1024"),
        (lambda e: env_float(e, KEY, 1.0), "fast", "is not a number"),
        (lambda e: env_float(e, KEY, 1.0), "nan", "is not a finite number"),
        (lambda e: env_float(e, KEY, 1.0), "inf", "is not a finite number"),
        (lambda e: env_float(e, KEY, 1.0), "0", "must be positive"),
        (lambda e: env_float(e, KEY, 1.0), "-3", "must be positive"),
        (lambda e: env_float(e, KEY, 1.0, minimum=0.0), "-0.5", "must be at least 0.0"),
    ],
)
def test_every_bad_value_is_a_config_error_naming_the_variable(
    read: Callable[[dict[str, str]], object], raw: str, says: str
) -> None:
    with pytest.raises(ConfigError, match=says) as info:
        read({KEY: raw})
    assert str(info.value).startswith(f"{KEY}=")


def test_good_values() -> None:
    assert env_int({KEY: " 42 "}, KEY, 1) == 42 and env_int({KEY: "-1"}, KEY, 0, minimum=None) == -1
    assert env_float({KEY: "0.25"}, KEY, 1.0) == 0.25 and env_float({KEY: "0"}, KEY, 1.0, minimum=0.0) == 0.0
    assert env_str({KEY: " a "}, KEY) == "a" and env_str({KEY: " a "}, KEY, strip=False) == " a "
    assert env_csv({KEY: "a, b,,c "}, KEY) == ("a", "b", "c")


def test_the_errors_module_names_the_same_class() -> None:
    assert errors.ConfigError is ConfigError and issubclass(ConfigError, ValueError)
