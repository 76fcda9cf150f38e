"""A fast path for the plain attributes Lightning sets on a module around every hook.

Lightning sets `module._current_fx_name` before and after each hook it calls, about 40
times a training step. Every such assignment goes through `nn.Module.__setattr__`, which
checks whether the value is a Parameter, a Module or a Buffer; the Parameter and Buffer
checks run Python-level `__instancecheck__`s: a measurable share of a small model's step
(docs/benchmarks.md, `--compare lightning`).

For a name that already is a plain attribute (it lives in the instance `__dict__`, so it
is no parameter, buffer or submodule) and a value that is neither a tensor nor a module,
`nn.Module.__setattr__` ends in `object.__setattr__` anyway; this mixin goes there
directly, as torch's own `Module.__init__` does for its bookkeeping attributes. Every
other assignment takes the usual path.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

_REGISTERED = (Tensor, nn.Module)  # values nn.Module may register (parameters, buffers, children)


class PlainAttributes(nn.Module):
    """Mixin for `nn.Module`s (LightningModules) whose plain attributes change every step."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.__dict__ and not isinstance(value, _REGISTERED):
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)
