"""A parameter penalty whose gradient has a closed form, as one autograd node.

Through autograd, L1 over a network's k parameter tensors is 2k + 2 nodes (an abs and a
sum a tensor, a stack, a sum), each with its own backward call, so L1 and L2 cost more a
step that way than handing autograd their closed-form gradients (sign θ and 2θ, one fused
op each for all tensors; docs/benchmarks.md has the figures). `ClosedFormPenalty` keeps
the value exactly as the penalty computes it and gives autograd the gradient
`grad_output · gradient(θ)`, identical to the one autograd derives for L1 and L2
(tests/test_closed_form_penalty.py). A backward that builds a graph (`create_graph=True`,
for second derivatives) differentiates the penalty through autograd instead.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch
from torch import Tensor

Penalty = Callable[[Sequence[Tensor]], Tensor]
Gradient = Callable[[Sequence[Tensor]], list[Tensor]]
P = TypeVar("P", bound=Callable)


def with_gradient(gradient: Callable) -> Callable[[P], P]:
    """Mark a penalty function with its closed-form gradient (`@with_gradient(l1_gradient)`).

    The gradient travels with the function, so the core finds it through the term's own
    `fn` and never imports the plug-ins that define penalties.
    """

    def mark(fn: P) -> P:
        fn.closed_form_gradient = gradient  # type: ignore[attr-defined]
        return fn

    return mark


def closed_form_gradient(fn: Callable) -> Gradient | None:
    """The gradient function of a penalty `fn` (or of a `functools.partial` of one), if it
    has one (`with_gradient`); None: autograd differentiates `fn`."""
    if isinstance(fn, functools.partial):
        gradient = getattr(fn.func, "closed_form_gradient", None)
        return None if gradient is None else functools.partial(gradient, *fn.args, **fn.keywords)
    return getattr(fn, "closed_form_gradient", None)


class ClosedFormPenalty(torch.autograd.Function):
    """`ClosedFormPenalty.apply(value, gradient, *params)`: `value(params)`, differentiated
    by `gradient(params)` (one tensor a parameter) instead of through its own graph."""

    # `forward` takes `ctx` itself: the `setup_context` form (needed only by torch.func
    # transforms, which refuse this one with a clear error) costs more a call
    @staticmethod
    def forward(ctx: Any, value: Penalty, gradient: Gradient, *params: Tensor) -> Tensor:
        ctx.value, ctx.gradient = value, gradient
        ctx.save_for_backward(*params)
        return value(params)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, ...]:
        params = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: autograd's own, differentiable again
            with torch.enable_grad():
                grads = torch.autograd.grad(
                    ctx.value(params), params, grad_output, create_graph=True
                )
        else:
            grads = torch._foreach_mul(ctx.gradient(params), grad_output)
        return (None, None, *grads)
