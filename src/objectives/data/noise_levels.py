"""Multi-output regression whose outputs are known to differ only in their noise: the
toy on which uncertainty weighting has an answer to check (configs/experiment/uw_two_heads).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def outputs_with_noise(
    n: int = 2000,
    in_features: int = 5,
    noise: Sequence[float] = (0.1, 1.0),
    seed: int = 42,
) -> tuple[Tensor, Tensor]:
    """X ~ N(0, I); output k is yₖ = X·wₖ + N(0, noiseₖ²), one random wₖ ~ N(0, I) each.
    The best any model can reach on output k is an MSE of noiseₖ²."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, in_features, generator=generator)
    w = torch.randn(in_features, len(noise), generator=generator)
    sigma = torch.tensor(list(noise), dtype=torch.float32)
    return x, x @ w + sigma * torch.randn(n, len(noise), generator=generator)
