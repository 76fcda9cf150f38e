"""Norm penalties on parameters: L1 (sparsity), L2 (shrinkage), elastic net (both).

L2 here is the seed's λ·Σθ², a term of the objective whose gradient 2λθ flows through
the optimizer (Adam rescales it). AdamW's `weight_decay` is different: it shrinks θ
directly, outside the gradient; see docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from objectives.errors import ConfigError


def l1(params: Sequence[Tensor]) -> Tensor:
    """‖θ‖₁ = Σ|θ|."""
    return torch.stack([p.abs().sum() for p in params]).sum()


def l2(params: Sequence[Tensor]) -> Tensor:
    """‖θ‖₂² = Σθ² (no ½: the seed's convention, gradient 2θ)."""
    return torch.stack([p.square().sum() for p in params]).sum()


def elastic_net(params: Sequence[Tensor], l1_ratio: float = 0.5) -> Tensor:
    """ρ‖θ‖₁ + (1−ρ)/2·‖θ‖₂², scikit-learn's convention (ρ = `l1_ratio`)."""
    if not 0.0 <= l1_ratio <= 1.0:
        raise ConfigError(
            f"regularizer elastic_net needs 0 ≤ l1_ratio ≤ 1, got {l1_ratio}; "
            "e.g. regularizer.elastic_net.fn.l1_ratio=0.5"
        )
    return l1_ratio * l1(params) + 0.5 * (1.0 - l1_ratio) * l2(params)


# Closed-form gradients, for attribution (no extra backward pass) and for training
# (closed_form.py: one autograd node a penalty). Each is one fused op over all tensors,
# and differentiable itself, so a second derivative through the penalty stays right.
def l1_gradient(params: Sequence[Tensor]) -> list[Tensor]:
    """∂‖θ‖₁/∂θ = sign(θ) (0 at 0, as autograd takes it)."""
    return list(torch._foreach_sign(list(params)))


def l2_gradient(params: Sequence[Tensor]) -> list[Tensor]:
    """∂‖θ‖₂²/∂θ = 2θ (the seed's dw_reg / λ)."""
    return list(torch._foreach_mul(list(params), 2.0))


def elastic_net_gradient(params: Sequence[Tensor], l1_ratio: float = 0.5) -> list[Tensor]:
    """ρ·sign(θ) + (1−ρ)·θ."""
    params = list(params)
    signs = torch._foreach_mul(torch._foreach_sign(params), l1_ratio)
    return list(torch._foreach_add(signs, torch._foreach_mul(params, 1.0 - l1_ratio)))


GRADIENTS: dict[Callable, Callable] = {
    l1: l1_gradient,
    l2: l2_gradient,
    elastic_net: elastic_net_gradient,
}


def closed_form_gradient(fn: Callable) -> Callable[[Sequence[Tensor]], list[Tensor]] | None:
    """The gradient function of a penalty `fn` (or of a `functools.partial` of one), if known."""
    if isinstance(fn, functools.partial):
        gradient = GRADIENTS.get(fn.func)
        return None if gradient is None else functools.partial(gradient, *fn.args, **fn.keywords)
    return GRADIENTS.get(fn)
