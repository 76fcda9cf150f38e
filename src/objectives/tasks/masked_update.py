"""An optimizer step that is undone on the device when a flag says so.

`task.nonfinite=skip` must leave a bad step's weights and optimizer state exactly as they
were, on the step it happens, yet never read the flag on the host (on a GPU each read
waits for every queued kernel). So the step always runs, and afterwards every parameter
and optimizer-state tensor takes `torch.where(bad, before, after)`: what GradScaler does
with its own inf check, for any optimizer. The snapshot is one copy of the parameters
and the state; it is paid only under `skip`.

One exception costs a host read: parameters without optimizer state before the step (the
first step) get their state created by it, and a skipped first step must leave no state
behind (a fresh state is not always zeros: SGD's momentum buffer starts as the gradient).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor
from torch.optim import Optimizer


def _state_tensors(optimizer: Optimizer, params: Sequence[Tensor]) -> list[Tensor]:
    return [
        value
        for p in params
        for value in optimizer.state.get(p, {}).values()
        if isinstance(value, Tensor)
    ]


@contextmanager
def undone_if(
    bad: Callable[[], Tensor | None], optimizer: Optimizer, extra: Sequence[Tensor] = ()
) -> Iterator[None]:
    """Run the block (an optimizer step, and whatever else updates `extra`), then restore
    the parameters, their optimizer state and `extra` wherever `bad()` is a true 0-d bool
    tensor. `bad()` is read after the block: the step's closure may be what computes it."""
    optimizer = getattr(optimizer, "optimizer", optimizer)  # Lightning's wrapper
    params = [p for group in optimizer.param_groups for p in group["params"]]
    fresh = [p for p in params if not optimizer.state.get(p)]
    kept = [*params, *_state_tensors(optimizer, params), *extra]
    with torch.no_grad():
        before = [t.detach().clone() for t in kept]
    yield
    flag = bad()
    if flag is None:
        return
    with torch.no_grad():
        for tensor, old in zip(kept, before, strict=True):
            tensor.copy_(torch.where(flag, old, tensor))
        gained = [p for p in fresh if optimizer.state.get(p)]
        if gained and bool(flag):  # the one host read: only on a step that created state
            for p in gained:
                optimizer.state.pop(p, None)
