"""Refuse a setting of the wrong type before anything is built: `data.source.n=abc` where
the data source takes an integer, `model.hidden=[abc]` where it takes integers.

Every configured object names its callable (`_target_`), and that callable's signature says
what each argument takes. Hydra passes whatever was typed; the callable then fails deep
inside with a TypeError (which, raised in the project's own code, reads as a bug and keeps
its traceback) or, worse, runs on with text where a number belongs. Here each typed value
is held against the argument's type hint first, and a mismatch is one line naming the key,
what it takes and an example. NaN is no setting of anything: it is refused wherever it is
typed (`optimizer.momentum=nan`, `scheduler.eta_min=nan`). Hints this module cannot read
(a class of the caller's, a callable, `Any`) accept anything: the callable itself stays
the judge of values.
"""

from __future__ import annotations

import collections.abc
import inspect
import math
import numbers
import types
import typing
from typing import Any

from hydra.utils import get_object
from omegaconf import DictConfig, ListConfig, OmegaConf

from objectives.errors import ConfigError

# the config groups whose nodes build objects (each may hold nested `_target_` nodes)
BUILT = ("data", "model", "optimizer", "scheduler", "task", "weighting", "augment", "loss",
         "regularizer", "callbacks", "logger", "trainer")  # fmt: skip
UNKNOWN = object()  # a hint this module does not judge


def check_setting_types(cfg: DictConfig) -> None:
    """Check every `_target_` node under the groups that build objects."""
    for group in BUILT:
        node = cfg.get(group) if isinstance(cfg, DictConfig) else None
        if isinstance(node, DictConfig):
            _walk(node, group)


# a term's own settings sit beside its `fn` (configs/regularizer/l2.yaml); the term class
# that takes them gives their hints
TERM_CLASS = "objectives.objective.term.ParameterPenalty"


def _walk(node: DictConfig, key: str) -> None:
    if "_target_" in node:
        _check_node(node, key)
    elif isinstance(node.get("fn"), DictConfig) and "_target_" in node.fn:
        _check_node(node, key, TERM_CLASS)
    for child in node:
        value = node._get_node(child)
        if isinstance(value, DictConfig):
            _walk(value, f"{key}.{child}")


def _hints_of(target: str) -> dict[str, Any]:
    try:
        obj = get_object(target)
    except Exception:  # an unknown target: instantiating it reports that, in one line
        return {}
    # a class's own hints first, then those of the classes its **kwargs reach
    functions = [c.__init__ for c in reversed(obj.__mro__)] if inspect.isclass(obj) else [obj]
    hints: dict[str, Any] = {}
    for function in functions:
        try:
            hints.update(typing.get_type_hints(function))
        except Exception:  # hints that name what only a type checker imports: not judged
            continue
    return hints


def _check_node(node: DictConfig, key: str, target: str | None = None) -> None:
    hints = _hints_of(target or str(node._get_node("_target_")._value()))
    for child in node:
        name = str(child)
        if name.startswith("_"):
            continue
        raw = node._get_node(child)._value()
        if isinstance(raw, str) and "${" in raw:  # an interpolation: its source is checked
            continue
        try:
            value = node[child]
        except Exception:  # resolvable only inside a Hydra run
            continue
        if isinstance(value, DictConfig) or value is None:
            continue
        if isinstance(value, ListConfig):  # nested lists too: [[2, 1.2], [1.2, 1]]
            try:
                value = OmegaConf.to_container(value, resolve=True)
            except Exception:  # an item resolvable only inside a Hydra run
                continue
        if any(isinstance(v, float) and math.isnan(v) for v in _items(value)):
            raise ConfigError(f"{key}.{name} is NaN, which no setting takes; give it a number")
        wanted = _refusal(hints[name], value) if name in hints else None
        if wanted is not None:
            example = _example(hints[name])
            raise ConfigError(
                f"{key}.{name} must be {wanted}, got {_typed(value)}; e.g. {key}.{name}={example}"
            )


def _items(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _refusal(hint: object, value: object) -> str | None:
    """What `hint` takes, in words, when `value` is not of it; None when it is (or when the
    hint is not one this module judges)."""
    accepts = _accepts(hint, value)
    return None if accepts is not False else _words(hint)


def _accepts(hint: object, value: object) -> bool | object:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any or hint is object:
        return True
    if origin is typing.Literal:
        return value in args
    if origin in (typing.Union, types.UnionType):
        results = [_accepts(arg, value) for arg in args if arg is not type(None)]
        if any(r is True for r in results):
            return True
        return UNKNOWN if any(r is UNKNOWN for r in results) else False
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    sequence = origin or hint
    if sequence in (list, tuple, collections.abc.Sequence):
        if isinstance(value, str) or not isinstance(value, list | tuple):
            return False
        inner = [a for a in args if a is not Ellipsis]
        if len(inner) == 1 or (sequence is tuple and inner and len(set(inner)) == 1):
            results = [_accepts(inner[0], v) for v in value]
            return not any(r is False for r in results)
        return UNKNOWN
    return UNKNOWN


# each plain type: what it takes, in words, and an example value
PLAIN = {bool: ("true or false", "true"), int: ("an integer", "1"), float: ("a number", "0.1"),
         str: ("text", "<text>")}  # fmt: skip
PLURAL = {"an integer": "integers", "a number": "numbers", "true or false": "true/false",
          "text": "texts"}  # fmt: skip


def _words(hint: object) -> str:
    """What `hint` takes, in words: `an integer`, `a list of integers`, `one of a, b`."""
    return _describe(hint)[0]


def _example(hint: object) -> str:
    """A value `hint` takes, as typed on the command line."""
    return _describe(hint)[1]


def _describe(hint: object) -> tuple[str, str]:
    origin = typing.get_origin(hint)
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if origin is typing.Literal:
        literals = [str(a) for a in typing.get_args(hint)]
        return "one of " + ", ".join(literals), literals[0]
    if origin in (typing.Union, types.UnionType):
        parts = [_describe(a) for a in args]
        words = list(dict.fromkeys(w for w, _ in parts))
        said = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]
        return said, parts[0][1] if parts else "null"
    if hint in PLAIN:
        return PLAIN[hint]  # type: ignore[index]
    if (origin or hint) in (list, tuple, collections.abc.Sequence):
        inner = [a for a in args if a is not Ellipsis]
        if not inner:
            return "a list", "[]"
        words, example = _describe(inner[0])
        plural = PLURAL.get(
            words, "lists" + words[len("a list") :] if words.startswith("a list") else words
        )
        return f"a list of {plural}", f"[{example}]"
    return getattr(hint, "__name__", str(hint)), "<value>"


def _typed(value: object) -> str:
    """A value as it is typed on the command line: `0.001`, `[1,abc]`, `abc`."""
    if isinstance(value, list | tuple):
        return "[" + ",".join(_typed(v) for v in value) + "]"
    if isinstance(value, bool):
        return str(value).lower()
    return f"{value:g}" if isinstance(value, float) else str(value)
