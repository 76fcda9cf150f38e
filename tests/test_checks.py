"""objectives.checks: what each check accepts (and returns), what it refuses (bools where a
number is wanted, NaN, ±inf, text, values out of range), and its one-line message naming
the key and, given one, an example to type."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from omegaconf import OmegaConf

from objectives import checks
from objectives.errors import ConfigError

NAN, INF = float("nan"), float("inf")


def message(call) -> str:
    with pytest.raises(ConfigError) as err:
        call()
    text = str(err.value)
    assert "\n" not in text
    return text


# -- show -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0, "0"),
        (0.5, "0.5"),
        ("abc", "'abc'"),
        (None, "None"),
        (True, "True"),
        ((0.5,), "[0.5]"),
        ([1, [2, "x"]], "[1, [2, 'x']]"),
        (OmegaConf.create([1.5, 2]), "[1.5, 2]"),
        (np.float64(0.25), "0.25"),
    ],
)
def test_show_writes_a_value_as_it_is_typed(value, shown: str) -> None:
    assert checks.show(value) == shown


# -- integers -------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [1, 5, 10**12, np.int64(3)])
def test_positive_int_accepts_integers_from_one_and_returns_an_int(value) -> None:
    out = checks.positive_int(value, "task.n_critic")
    assert out == value and type(out) is int
    assert checks.is_positive_int(value)


@pytest.mark.parametrize("value", [0, -3, True, False, 2.0, 2.5, NAN, INF, "5", None, [5]])
def test_positive_int_refuses_bools_floats_text_and_values_below_one(value) -> None:
    assert not checks.is_positive_int(value)
    text = message(lambda: checks.positive_int(value, "task.n_critic", example=5))
    assert text == (
        f"task.n_critic must be a positive integer, got {checks.show(value)}; e.g. task.n_critic=5"
    )


def test_positive_int_without_an_example_ends_at_the_value() -> None:
    text = message(lambda: checks.positive_int(0, "task.n_critic"))
    assert text == "task.n_critic must be a positive integer, got 0"


@pytest.mark.parametrize(("value", "low"), [(0, 0), (7, 0), (-2, None), (3, 3)])
def test_integer_accepts_integers_from_low(value: int, low: int | None) -> None:
    assert checks.integer(value, "callbacks.x.every_n_steps", low=low) == value


@pytest.mark.parametrize(
    ("value", "low", "expected"),
    [
        (-1, 0, "k must be an integer ≥ 0, got -1"),
        (True, 0, "k must be an integer ≥ 0, got True"),
        (1.0, None, "k must be an integer, got 1.0"),
        ("abc", None, "k must be an integer, got 'abc'"),
        (NAN, 0, "k must be an integer ≥ 0, got nan"),
    ],
)
def test_integer_refuses_what_is_not_an_integer_at_least_low(value, low, expected: str) -> None:
    assert message(lambda: checks.integer(value, "k", low=low)) == expected


def test_integer_message_can_say_what_the_value_is() -> None:
    text = message(lambda: checks.integer(-1, "k", low=0, what="an integer ≥ 0 (0 is off)"))
    assert text == "k must be an integer ≥ 0 (0 is off), got -1"


# -- numbers --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "bounds"),
    [
        (0, {}),
        (-1e30, {}),
        (0, {"low": 0}),
        (1e-9, {"low": 0, "low_open": True}),
        (0.0, {"low": 0, "high": 1, "high_open": True}),
        (1, {"low": 0, "high": 1}),
        (0.5, {"low": 0, "high": 1, "low_open": True, "high_open": True}),
        (np.float32(0.25), {"low": 0, "high": 1}),
        (-3, {"high": -3}),
    ],
)
def test_number_accepts_finite_numbers_within_bounds_and_returns_a_float(value, bounds) -> None:
    out = checks.number(value, "model.dropout", **bounds)
    assert out == pytest.approx(float(value)) and type(out) is float
    assert checks.is_number(value)


@pytest.mark.parametrize("value", [True, False, NAN, INF, -INF, "0.5", None, [0.5]])
def test_number_refuses_bools_nan_infinity_and_text(value) -> None:
    assert not checks.is_number(value)
    text = message(lambda: checks.number(value, "loss.quantile.fn.q"))
    assert text == f"loss.quantile.fn.q must be a number, got {checks.show(value)}"


@pytest.mark.parametrize(
    ("value", "bounds", "words"),
    [
        (-0.5, {"low": 0}, "a number ≥ 0"),
        (0, {"low": 0, "low_open": True}, "a number > 0"),
        (2, {"high": 1}, "a number ≤ 1"),
        (1, {"high": 1, "high_open": True}, "a number < 1"),
        (1, {"low": 0, "high": 1, "high_open": True}, "a number in [0, 1)"),
        (0, {"low": 0, "high": 1, "low_open": True}, "a number in (0, 1]"),
        (1.5, {"low": 0, "high": 1}, "a number in [0, 1]"),
        (1, {"low": 0, "high": 1, "low_open": True, "high_open": True}, "a number in (0, 1)"),
        (0.0005, {"low": 0.001}, "a number ≥ 0.001"),
        (INF, {"low": 0}, "a number ≥ 0"),
        (True, {"low": 0, "high": 1}, "a number in [0, 1]"),
    ],
)
def test_number_refuses_values_out_of_range_saying_the_range(value, bounds, words: str) -> None:
    text = message(lambda: checks.number(value, "loss.quantile.fn.q", example=0.9, **bounds))
    assert text == (
        f"loss.quantile.fn.q must be {words}, got {checks.show(value)}; e.g. loss.quantile.fn.q=0.9"
    )


def test_number_message_can_say_what_the_value_is() -> None:
    text = message(lambda: checks.number(-1, "regularizer.gp.target", low=0, what="a norm ≥ 0"))
    assert text == "regularizer.gp.target must be a norm ≥ 0, got -1"


# -- true or false --------------------------------------------------------------------------
@pytest.mark.parametrize("value", [True, False])
def test_boolean_accepts_true_and_false(value: bool) -> None:
    assert checks.boolean(value, "augment.fuse") is value


@pytest.mark.parametrize("value", [0, 1, "yes", "true", None, 1.0])
def test_boolean_refuses_numbers_and_text(value) -> None:
    text = message(lambda: checks.boolean(value, "model.spectral_norm"))
    assert text == f"model.spectral_norm must be true or false, got {checks.show(value)}"


# -- one of ---------------------------------------------------------------------------------
def test_one_of_accepts_an_option_and_returns_it() -> None:
    assert checks.one_of("hard", "loss.triplet.fn.mining", ("semi_hard", "hard", "all")) == "hard"
    assert checks.one_of("cosine", "loss.triplet.fn.distance", ["euclidean", "cosine"]) == "cosine"


@pytest.mark.parametrize(
    ("value", "options", "expected"),
    [
        ("easy", ("semi_hard", "hard", "all"), "k must be one of semi_hard|hard|all, got 'easy'"),
        ("ranking", ("regression", "classification"),
         "k must be regression or classification, got 'ranking'"),
        (None, ("zeros", "border", "reflection"),
         "k must be one of zeros|border|reflection, got None"),
        (3, ("a", "b", "c"), "k must be one of a|b|c, got 3"),
        ("HARD", ("semi_hard", "hard", "all"), "k must be one of semi_hard|hard|all, got 'HARD'"),
    ],
)  # fmt: skip
def test_one_of_refuses_anything_else_listing_the_options(value, options, expected) -> None:
    assert message(lambda: checks.one_of(value, "k", options)) == expected


# -- the messages name the key --------------------------------------------------------------
@pytest.mark.parametrize(
    "call",
    [
        lambda: checks.positive_int(0, "data.batch_size"),
        lambda: checks.integer(-1, "data.batch_size", low=0),
        lambda: checks.number(math.nan, "data.batch_size"),
        lambda: checks.boolean("x", "data.batch_size"),
        lambda: checks.one_of("x", "data.batch_size", ("a", "b")),
    ],
)
def test_every_message_starts_with_the_key(call) -> None:
    assert re.match(r"data\.batch_size must be ", message(call))


def test_the_module_imports_only_the_errors_and_the_standard_library() -> None:
    import ast
    import sys
    from pathlib import Path

    tree = ast.parse(Path(checks.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    project = {name for name in imported if name.startswith("objectives")}
    assert project <= {"objectives.errors"}
    others = {name.split(".")[0] for name in imported - project}
    assert others <= set(sys.stdlib_module_names) | {"__future__"}
