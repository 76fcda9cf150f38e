"""Norm penalties on parameters: L1 (sparsity), L2 (shrinkage), elastic net (both).

L2 here is the seed's λ·Σθ², a term of the objective whose gradient 2λθ flows through
the optimizer (Adam rescales it). AdamW's `weight_decay` is different: it shrinks θ
directly, outside the gradient; see docs/ARCHITECTURE.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from objectives import checks
from objectives.objective.closed_form import with_gradient


# Closed-form gradients, carried by each penalty (`with_gradient`), for attribution (no
# extra backward pass) and for training (objective/closed_form.py: one autograd node a
# penalty). Each is one fused op over all tensors, and differentiable itself, so a second
# derivative through the penalty stays right.
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


@with_gradient(l1_gradient)
def l1(params: Sequence[Tensor]) -> Tensor:
    """‖θ‖₁ = Σ|θ|."""
    return torch.stack([p.abs().sum() for p in params]).sum()


@with_gradient(l2_gradient)
def l2(params: Sequence[Tensor]) -> Tensor:
    """‖θ‖₂² = Σθ² (no ½: the seed's convention, gradient 2θ)."""
    return torch.stack([p.square().sum() for p in params]).sum()


@with_gradient(elastic_net_gradient)
def elastic_net(params: Sequence[Tensor], l1_ratio: float = 0.5) -> Tensor:
    """ρ‖θ‖₁ + (1−ρ)/2·‖θ‖₂², scikit-learn's convention (ρ = `l1_ratio`)."""
    l1_ratio = checks.number(
        l1_ratio, "regularizer.elastic_net.fn.l1_ratio", low=0, high=1, example=0.5
    )
    return l1_ratio * l1(params) + 0.5 * (1.0 - l1_ratio) * l2(params)
