"""Synthetic data from a known probabilistic PCA model (Tipping & Bishop 1999), so that a
linear VAE's ELBO can be checked against the exact log-likelihood.

    x = μ + U diag(√variances) z + ε,   z ~ N(0, I_q),   ε ~ N(0, σ² I_d)

with U a random d × q matrix of orthonormal columns: the observed covariance is
U diag(variances) Uᵀ + σ² I, whose eigenvalues are variances + σ² along the q directions
and σ² in the other d − q.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from objectives import checks
from objectives.errors import ConfigError


@dataclass(frozen=True)
class PPCAParameters:
    """The generating model: mean μ (d,), loading W = U diag(√variances) (d, q), noise σ²."""

    mean: Tensor
    loading: Tensor
    noise: float

    @property
    def covariance(self) -> Tensor:
        """C = W Wᵀ + σ² I, the covariance of x."""
        d = len(self.mean)
        return self.loading @ self.loading.T + self.noise * torch.eye(d, dtype=self.loading.dtype)


def ppca_parameters(
    dim: int = 10,
    variances: Sequence[float] = (5.0, 4.0, 3.0, 0.5, 0.2),
    noise: float = 1.0,
    seed: int = 0,
) -> PPCAParameters:
    """The generating parameters (float64), the same for the same arguments."""
    dim = checks.positive_int(dim, "data.source.dim", example=10)
    noise = checks.number(noise, "data.source.noise", low=0, low_open=True, example=1.0)
    variances = [
        checks.number(v, "data.source.variances", low=0, low_open=True, example="[5,4,3]")
        for v in variances
    ]
    if not variances or len(variances) > dim:
        raise ConfigError(
            f"data.source.variances needs 1 to {dim} entries (one a latent direction), "
            f"got {len(variances)}"
        )
    generator = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(
        torch.randn(dim, len(variances), generator=generator, dtype=torch.float64)
    )
    mean = torch.randn(dim, generator=generator, dtype=torch.float64)
    loading = basis * torch.tensor(variances, dtype=torch.float64).sqrt()
    return PPCAParameters(mean, loading, noise)


def ppca(
    n: int = 5000,
    dim: int = 10,
    variances: Sequence[float] = (5.0, 4.0, 3.0, 0.5, 0.2),
    noise: float = 1.0,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """`n` rows of x (float32, (n, dim)) and, as targets, the latent z that made each (n, q)."""
    n = checks.positive_int(n, "data.source.n", example=5000)
    params = ppca_parameters(dim, variances, noise, seed)
    generator = torch.Generator().manual_seed(seed + 1)
    z = torch.randn(n, params.loading.shape[1], generator=generator, dtype=torch.float64)
    eps = torch.randn(n, dim, generator=generator, dtype=torch.float64)
    x = params.mean + z @ params.loading.T + noise**0.5 * eps
    return x.float(), z.float()
