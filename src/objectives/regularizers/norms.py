"""Norm penalties on parameters: L1 (sparsity), L2 (shrinkage), elastic net (both).

L2 here is the seed's λ·Σθ², a term of the objective whose gradient 2λθ flows through
the optimizer (Adam rescales it). AdamW's `weight_decay` is different: it shrinks θ
directly, outside the gradient; see docs/ARCHITECTURE.md.
"""

from __future__ import annotations

from collections.abc import Sequence

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
