"""The exact log-density of the ring of Gaussians (data/ring.py), for the "true NLL" a
flow's test NLL is held against:

    p(x) = (1/K) Σ_k N(x; c_k, σ² I₂)

With well-separated modes (σ ≪ the 1.53 between neighbours at radius 2) its entropy is
ln K + ln(2πe σ²): for K = 8 and σ = 0.1, 2.079 − 1.767 = 0.312 nats, the NLL a perfect
model reaches on average.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from objectives import checks
from objectives.data.ring import ring_centres


def ring_log_density(x: Tensor, modes: int = 8, radius: float = 2.0, std: float = 0.02) -> Tensor:
    """log p(x) of each row, float64 (N,), for the mixture `ring(modes, radius, std)` draws."""
    std = checks.number(std, "data.source.std", low=0, low_open=True, example=0.1)
    centres = ring_centres(modes, radius).to(device=x.device, dtype=torch.float64)  # as drawn
    squared = (x.double()[:, None, :] - centres).square().sum(-1)  # (N, K)
    log_normal = -squared / (2 * std**2) - math.log(2 * math.pi * std**2)
    return torch.logsumexp(log_normal, dim=1) - math.log(len(centres))
