"""Build a network whose sizes come from the data, not from the model config.

Model configs are `_partial_` factories that leave data-dependent sizes as `null`
(e.g. `in_features: null`); `build_model` fills those from the data module's `dims`.
A size the user set explicitly is kept, and a clash with the data is reported.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping

from torch import nn

from objectives.errors import ConfigError


def build_model(factory: Callable[..., nn.Module], dims: Mapping[str, int]) -> nn.Module:
    """Call `factory` with the sizes it accepts from `dims`, unless already set."""
    given = dict(factory.keywords) if isinstance(factory, functools.partial) else {}
    target = factory.func if isinstance(factory, functools.partial) else factory
    accepted = inspect.signature(target).parameters
    fill = {}
    for key, value in dims.items():
        if key not in accepted:
            continue
        if given.get(key) is None:
            fill[key] = value
        elif given[key] != value:
            raise ConfigError(
                f"model.{key}={given[key]} but the data has {key}={value}; "
                f"remove model.{key} (it is read from the data)"
            )
    missing = [k for k, v in given.items() if v is None and k not in fill]
    if missing:
        raise ConfigError(
            f"model {getattr(target, '__name__', target)} needs {', '.join(missing)}, "
            f"which the data does not provide (it provides {', '.join(dims)}); "
            f"set model.{missing[0]}"
        )
    try:
        return factory(**fill)
    except TypeError as err:
        raise ConfigError(f"model {getattr(target, '__name__', target)}: {err}") from err
