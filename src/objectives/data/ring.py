"""Eight Gaussians on a circle: the classic 2-d test of a GAN's mode collapse.

`ring()` draws points from an equal-weight mixture of `modes` isotropic Gaussians of
standard deviation `std` centred on a circle of `radius` (with the defaults neighbouring
centres are 2·2·sin(22.5°) ≈ 1.53 apart, about 75 σ, so every point is unambiguously
of one mode). The mode index is the label, so the usual `InMemoryDataModule` stratifies
its splits by mode. Nothing is downloaded.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from objectives import checks


def ring_centres(modes: int = 8, radius: float = 2.0) -> Tensor:
    """The mixture's means: float32 (modes, 2), centre k at angle k·360°/modes from +x."""
    modes = checks.positive_int(modes, "data.source.modes", example=8)
    radius = checks.number(radius, "data.source.radius", low=0, low_open=True, example=2)
    angles = torch.arange(modes, dtype=torch.float64) * (2 * math.pi / modes)
    return (radius * torch.stack([angles.cos(), angles.sin()], dim=1)).float()


def ring(
    n: int = 10_000,
    modes: int = 8,
    radius: float = 2.0,
    std: float = 0.02,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """`n` points of the ring mixture: float32 (n, 2) and their mode index, int64 (n,).

    Each point's mode is drawn uniformly at random (so counts per mode vary by about
    √(n/modes)), then the point is its centre plus N(0, std²·I).
    """
    n = checks.positive_int(n, "data.source.n", example=10000)
    std = checks.number(std, "data.source.std", low=0, low_open=True, example=0.02)
    centres = ring_centres(modes, radius)
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(modes, (n,), generator=generator, dtype=torch.int64)
    points = centres[labels] + std * torch.randn(n, 2, generator=generator)
    return points, labels
