"""How good a VAE is, in nats per sample, and the closed forms a linear one is checked by.

From k samples z_k ~ q(z|x) of each row, the log importance weights
log w_k = log p(x|z_k) + log p(z_k) − log q(z_k|x) give both

    ELBO estimate      (1/k) Σ_k log w_k
    k-sample bound     log (1/k) Σ_k w_k        (Burda et al. 2016; −nll_iw)

from the same samples, so that bound ≥ ELBO holds for every row by Jensen's inequality
(the mean of logs is at most the log of the mean), not by the luck of the draw. The gap is
computed as log-mean-exp of the centred weights in float64, where it is ≥ 0 up to rounding
of order 1e−16, which is clamped away.

Active units (Burda et al.): a latent unit d is active when Cov_x(E_q[z_d]) > 0.01, the
variance over the data of its posterior mean; a collapsed unit's posterior is the prior
for every x.

The pPCA closed forms (Tipping & Bishop 1999): with S the sample covariance (divided by N)
of the training rows, eigenvalues λ₁ ≥ ... ≥ λ_d and eigenvectors U, the maximum-
likelihood q-dimensional model has σ² = mean of the d − q discarded eigenvalues and
W = U_q (Λ_q − σ²I)^½; at a fixed σ², the maximum is W = U_q (Λ_q − σ²I)₊^½ (a direction
with λ ≤ σ² gets a zero column: the VAE's unit collapses). Either way the model covariance
is C = W Wᵀ + σ² I and log p(x) = log N(x; x̄, C).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.distributions import MultivariateNormal
from torchmetrics import Metric

from objectives.losses.vae import kl_per_dimension


# -- closed forms -------------------------------------------------------------------------
def gaussian_log_density(x: Tensor, mean: Tensor, covariance: Tensor) -> Tensor:
    """log N(x; mean, covariance) of each row, in float64."""
    distribution = MultivariateNormal(mean.double(), covariance_matrix=covariance.double())
    return distribution.log_prob(x.double())


def ppca_fit(x: Tensor, latent_dim: int, sigma2: float | None = None) -> tuple[Tensor, Tensor]:
    """The maximum-likelihood pPCA of rows `x` with `latent_dim` directions, as (mean, C);
    `sigma2` fixes the noise variance, None fits it."""
    x = x.double()
    mean = x.mean(0)
    centred = x - mean
    eigenvalues, eigenvectors = torch.linalg.eigh(centred.T @ centred / len(x))
    eigenvalues, eigenvectors = eigenvalues.flip(0), eigenvectors.flip(1)  # largest first
    d = x.shape[1]
    if sigma2 is None:
        sigma2 = float(eigenvalues[latent_dim:].mean()) if latent_dim < d else 0.0
    kept = (eigenvalues[:latent_dim] - sigma2).clamp_min(0.0)
    loading = eigenvectors[:, :latent_dim] * kept.sqrt()
    covariance = loading @ loading.T + sigma2 * torch.eye(d, dtype=x.dtype)
    return mean, covariance


def ppca_log_likelihood(
    x: Tensor, train: Tensor, latent_dim: int, sigma2: float | None = None
) -> float:
    """Mean log p(x) of rows `x` under the maximum-likelihood pPCA of the rows `train`."""
    mean, covariance = ppca_fit(train, latent_dim, sigma2)
    return float(gaussian_log_density(x, mean, covariance).mean())


def standard_normal_log_density(z: Tensor) -> Tensor:
    """log N(z; 0, I), summed over the last dimension."""
    return -0.5 * (z.square() + math.log(2 * math.pi)).sum(-1)


def diagonal_normal_log_density(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """log N(z; μ, diag e^logvar), summed over the last dimension."""
    return -0.5 * ((z - mu).square() / logvar.exp() + logvar + math.log(2 * math.pi)).sum(-1)


# -- torchmetrics: epoch sums, reduced across processes -----------------------------------
class ImportanceSampledBounds(Metric):
    """`elbo` and `nll_iw` in nats per sample, from log weights (N, k) of the same samples."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        for name in ("elbo_sum", "gap_sum", "rows"):
            self.add_state(name, torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, inputs: dict[str, Tensor]) -> None:
        log_w = inputs["log_w"].double()
        elbo = log_w.mean(1)
        k = log_w.shape[1]
        gap = (torch.logsumexp(log_w - elbo[:, None], dim=1) - math.log(k)).clamp_min(0.0)
        self.elbo_sum += elbo.sum()
        self.gap_sum += gap.sum()
        self.rows += len(log_w)

    def compute(self) -> dict[str, Tensor]:
        elbo = self.elbo_sum / self.rows
        return {"elbo": elbo, "nll_iw": -(self.elbo_sum + self.gap_sum) / self.rows}


class ActiveUnits(Metric):
    """The number of latent units whose posterior mean varies over the data by more than
    `threshold` (Burda et al.: 0.01)."""

    full_state_update = False

    def __init__(self, latent_dim: int, threshold: float = 0.01) -> None:
        super().__init__()
        self.threshold = threshold
        self.add_state("total", torch.zeros(latent_dim, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state(
            "squares", torch.zeros(latent_dim, dtype=torch.float64), dist_reduce_fx="sum"
        )
        self.add_state("rows", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, inputs: dict[str, Tensor]) -> None:
        mu = inputs["mu"].double()
        self.total += mu.sum(0)
        self.squares += mu.square().sum(0)
        self.rows += len(mu)

    def variances(self) -> Tensor:
        """Cov_x(E_q[z_d]) of each unit (divided by N)."""
        mean = self.total / self.rows
        return (self.squares / self.rows - mean.square()).clamp_min(0.0)

    def compute(self) -> Tensor:
        return (self.variances() > self.threshold).sum().to(torch.float64)


class KLPerDimension(Metric):
    """`kl`, the analytic KL(q(z|x) ‖ N(0, I)) per sample, and `kl_dim/<d>` for each unit
    (the KL a unit carries: about 0 for a collapsed one)."""

    full_state_update = False

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.add_state("total", torch.zeros(latent_dim, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("rows", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, inputs: dict[str, Tensor]) -> None:
        self.total += kl_per_dimension(inputs["mu"], inputs["logvar"]).double().sum(0)
        self.rows += len(inputs["mu"])

    def compute(self) -> dict[str, Tensor]:
        per_dim = self.total / self.rows
        return {"kl": per_dim.sum(), **{f"kl_dim/{d}": v for d, v in enumerate(per_dim)}}
