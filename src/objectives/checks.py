"""Checks on settings: each returns the value it accepts, or raises one `ConfigError` line
that names the setting and how to fix it.

    positive_int(n_critic, "task.n_critic", example=5)
    # task.n_critic must be a positive integer, got 0; e.g. task.n_critic=5

`key` is the override a user would type (`task.n_critic`, `augment.crop.p`), or a class
and argument (`LinearRamp.steps`) where no config names it. A bool is never a number here
(Python counts `True` as 1), and neither is text, NaN or ±inf.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any, NoReturn, TypeVar

from objectives.errors import ConfigError

T = TypeVar("T")


def typed_list(values: Sequence[object]) -> str:
    """`[16,32,64]`: a list as it is typed on the command line (no spaces), for the fix a
    message suggests."""
    return "[" + ",".join(str(v) for v in values) + "]"


def show(value: Any) -> str:
    """A value as the user typed it: lists (also OmegaConf's, and tuples) as `[a, b]`, text
    quoted."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        return "[" + ", ".join(show(item) for item in value) + "]"
    return repr(value) if isinstance(value, str) else str(value)


def _fail(key: str, what: str, value: Any, example: Any = None) -> NoReturn:
    """Raise `{key} must be {what}, got {value}` (`; e.g. {key}={example}` with an example)."""
    hint = "" if example is None else f"; e.g. {key}={example}"
    raise ConfigError(f"{key} must be {what}, got {show(value)}{hint}")


def is_number(value: Any) -> bool:
    """A finite real number, not a bool."""
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def is_positive_int(value: Any) -> bool:
    """An integer ≥ 1, not a bool (a layer width, a count)."""
    return isinstance(value, Integral) and not isinstance(value, bool) and value >= 1


def integer(
    value: Any, key: str, *, low: int | None = None, what: str | None = None, example: Any = None
) -> int:
    """`value` as an int if it is an integer (not a bool) ≥ `low`."""
    if not (isinstance(value, Integral) and not isinstance(value, bool)) or (
        low is not None and value < low
    ):
        _fail(key, what or ("an integer" if low is None else f"an integer ≥ {low}"), value, example)
    return int(value)


def positive_int(value: Any, key: str, *, example: Any = None) -> int:
    """`value` as an int if it is an integer ≥ 1 (not a bool)."""
    if not is_positive_int(value):
        _fail(key, "a positive integer", value, example)
    return int(value)


def number(
    value: Any,
    key: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    what: str | None = None,
    example: Any = None,
) -> float:
    """`value` as a float if it is a finite number (not a bool) within the bounds: ≥ `low`
    (> with `low_open`) and ≤ `high` (< with `high_open`). `what` replaces the description
    the message gives (`a number in [0, 1)`)."""
    ok = is_number(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        _fail(key, what or _number_words(low, high, low_open, high_open), value, example)
    return float(value)


def _number_words(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    """`a number > 0`, `a number ≥ 0`, `a number in [0, 1)`, `a number`."""
    if low is not None and high is not None:
        return f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"a number {'>' if low_open else '≥'} {low:g}"
    if high is not None:
        return f"a number {'<' if high_open else '≤'} {high:g}"
    return "a number"


def boolean(value: Any, key: str) -> bool:
    """`value` if it is True or False (not 0, 1 or text)."""
    if not isinstance(value, bool):
        _fail(key, "true or false", value)
    return value


def one_of(value: Any, key: str, options: Sequence[T]) -> T:
    """`value` if it is one of `options`: `{key} must be a or b` for two, `one of a|b|c`
    for more."""
    choices = list(options)
    if value not in choices:
        names = [str(option) for option in choices]
        what = " or ".join(names) if len(names) == 2 else "one of " + "|".join(names)
        _fail(key, what, value)
    return value
