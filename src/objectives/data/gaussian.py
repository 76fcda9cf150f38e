"""A Gaussian with a full covariance: the simplest density a flow must fit exactly.

    x = μ + L ε,   ε ~ N(0, I),   L Lᵀ = Σ (Cholesky)

An affine map of x is a perfect flow here, so a flow's test NLL can be held against the
generating density's on the same rows (`gaussian_log_density`, the truth `task.reference`
reads). The targets are the ε that made each row (unused by task=flow). The dimension is
the covariance's: 2 by default (configs/data/gaussian2d.yaml), any other by its settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from objectives import checks
from objectives.errors import ConfigError


def _parameters(mean: Sequence[float], covariance: Sequence[Sequence[float]]):
    """μ (D,) and Σ (D, D) in float64, Σ checked to be symmetric positive definite."""
    try:
        mu = torch.tensor([float(m) for m in mean], dtype=torch.float64)
        sigma = torch.tensor([[float(v) for v in row] for row in covariance], dtype=torch.float64)
    except (TypeError, ValueError) as err:
        raise ConfigError(
            f"data.source.mean and covariance must be a list and a square list of lists of "
            f"numbers ({err}); e.g. mean=[0,0] covariance=[[1,0.5],[0.5,1]]"
        ) from None
    if sigma.shape != (len(mu), len(mu)):
        raise ConfigError(
            f"data.source.covariance must be {len(mu)}×{len(mu)} for a mean of {len(mu)} "
            f"entries, got {tuple(sigma.shape)}"
        )
    if not torch.equal(sigma, sigma.T) or torch.linalg.cholesky_ex(sigma).info != 0:
        raise ConfigError(
            f"data.source.covariance={sigma.tolist()} is not symmetric positive definite; "
            "e.g. [[2,1.2],[1.2,1]]"
        )
    return mu, sigma


def gaussian(
    n: int = 10_000,
    mean: Sequence[float] = (1.0, -0.5),
    covariance: Sequence[Sequence[float]] = ((2.0, 1.2), (1.2, 1.0)),
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """`n` rows of N(μ, Σ), float32 (n, D), and the ε that made each, float32 (n, D)."""
    n = checks.positive_int(n, "data.source.n", example=10000)
    mu, sigma = _parameters(mean, covariance)
    generator = torch.Generator().manual_seed(seed)
    eps = torch.randn(n, len(mu), generator=generator, dtype=torch.float64)
    x = mu + eps @ torch.linalg.cholesky(sigma).T
    return x.float(), eps.float()


def gaussian_log_density(
    x: Tensor,
    mean: Sequence[float] = (1.0, -0.5),
    covariance: Sequence[Any] = ((2.0, 1.2), (1.2, 1.0)),
) -> Tensor:
    """log N(x; μ, Σ) of each row, float64 (N,)."""
    mu, sigma = _parameters(mean, covariance)
    density = torch.distributions.MultivariateNormal(mu.to(x.device), sigma.to(x.device))
    return density.log_prob(x.double())
