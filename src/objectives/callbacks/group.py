"""Several callbacks behind one, so that Lightning dispatches each hook once.

Lightning calls every hook of every callback, each call wrapped in its profiler, whether
the callback overrides the hook or not: a cost a callback and step (six hooks run each
step; docs/benchmarks.md). The default observers (gradient attribution,
parameter statistics, TensorBoard layout, regression figures, input saliency) are five
callbacks that act in two of those six hooks. Grouped, each hook is one call, and it
reaches only the members that override it, in their order: a hook with one such member
is that member's own bound method, one with none is the base class's no-op.

Lightning's own callbacks stay outside any group (checkpoints, early stopping, progress
bars, the LR monitor: the trainer looks those up by type), and so do a user's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from lightning.pytorch.callbacks import Callback

# the hooks Lightning calls on a callback; state_dict/load_state_dict are the group's own
HOOKS = tuple(
    name
    for name, fn in vars(Callback).items()
    if callable(fn) and not name.startswith("_") and name not in ("state_dict", "load_state_dict")
)


def overrides(callback: Callback, hook: str) -> bool:
    return getattr(type(callback), hook) is not getattr(Callback, hook)


def _call_each(members: Sequence[Callable[..., Any]], *args: Any, **kwargs: Any) -> None:
    for member in members:
        member(*args, **kwargs)


class CallbackGroup(Callback):
    """One Lightning callback that runs `callbacks`' hooks, each hook only where overridden.

    Members keep their own state: `state_dict` holds each member's under its `state_key`.
    """

    def __init__(self, callbacks: Iterable[Callback]) -> None:
        self.callbacks = list(callbacks)
        keys = [c.state_key for c in self.callbacks]
        if len(set(keys)) != len(keys):
            raise ValueError(f"callbacks in a group need distinct state keys, got {keys}")
        for hook in HOOKS:
            members = [getattr(c, hook) for c in self.callbacks if overrides(c, hook)]
            if len(members) == 1:
                setattr(self, hook, members[0])
            elif members:  # a partial of a module-level function: picklable (ddp_spawn)
                setattr(self, hook, functools.partial(_call_each, tuple(members)))

    @property
    def state_key(self) -> str:
        return f"CallbackGroup[{', '.join(c.state_key for c in self.callbacks)}]"

    def state_dict(self) -> dict[str, Any]:
        return {c.state_key: state for c in self.callbacks if (state := c.state_dict())}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        for callback in self.callbacks:
            if callback.state_key in state_dict:
                callback.load_state_dict(state_dict[callback.state_key])

    def __repr__(self) -> str:
        return f"CallbackGroup({', '.join(type(c).__name__ for c in self.callbacks)})"


def own_callbacks(callbacks: Iterable[Callback], package: str = "objectives.") -> list[Callback]:
    """This project's own callbacks among `callbacks`: classes defined under `package`."""
    return [c for c in callbacks if type(c).__module__.startswith(package)]


def group_observers(callbacks: Iterable[Callback], package: str = "objectives.") -> list[Callback]:
    """`callbacks` with this project's own ones (classes defined under `package`) replaced by
    one `CallbackGroup` where the first of them stood; the others keep their places."""
    callbacks = list(callbacks)
    ours = own_callbacks(callbacks, package)
    if len(ours) < 2:
        return callbacks
    first = callbacks.index(ours[0])
    rest = [c for c in callbacks if c not in ours]
    return [*rest[:first], CallbackGroup(ours), *rest[first:]]
