"""Step methods whose signature is computed once.

Lightning reads the signature of `training_step` on every batch (to decide whether to pass
`batch_idx`), and of the validation and test steps on every evaluation batch, through
`inspect.getfullargspec`, which builds it anew each time (docs/benchmarks.md has the
cost). `inspect` honours a function's `__signature__`, which
`stored_signature` sets once, when the class is defined; `ObjectiveModule` applies it
to its own step methods and to those of every task class.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def stored_signature(fn: F) -> F:
    """`fn` with its signature computed once, for `inspect` to read back."""
    fn.__signature__ = inspect.signature(fn)
    return fn
