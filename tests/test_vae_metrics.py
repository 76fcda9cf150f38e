"""The VAE's figures against independent truths: scikit-learn's probabilistic PCA, a
brute-force maximisation of the pPCA likelihood, the exact pPCA posterior (where the
ELBO is tight), and the bounds and active units computed by hand."""

from __future__ import annotations

import math

import pytest
import torch
from sklearn.decomposition import PCA

from objectives.data.ppca import ppca, ppca_parameters
from objectives.losses.vae import GaussianReconstruction, KLDivergence
from objectives.metrics.vae import (
    ActiveUnits,
    ImportanceSampledBounds,
    KLPerDimension,
    gaussian_log_density,
    ppca_fit,
)
from objectives.models.vae import LinearVAE
from objectives.objective import Objective
from objectives.tasks.vae import VAEModule


@pytest.fixture(scope="module")
def data() -> torch.Tensor:
    return ppca(n=2000, seed=3)[0].double()


def test_data_has_the_generating_covariance() -> None:
    x, z = ppca(n=50_000, seed=1)
    params = ppca_parameters(seed=1)
    assert z.shape == (50_000, 5)
    eigenvalues = torch.linalg.eigvalsh(params.covariance).flip(0)
    expected = torch.tensor([6.0, 5.0, 4.0, 1.5, 1.2, 1, 1, 1, 1, 1], dtype=torch.float64)
    assert torch.allclose(eigenvalues, expected, atol=1e-12)
    sample = torch.cov(x.double().T)
    assert torch.allclose(sample, params.covariance, atol=0.1)


def test_ml_fit_is_scikit_learns_probabilistic_pca(data: torch.Tensor) -> None:
    """scikit-learn's pPCA (PCA.get_covariance, noise_variance_ = mean of the discarded
    eigenvalues) uses the covariance divided by N − 1; the ML fit divides by N."""
    mean, covariance = ppca_fit(data, 5)
    pca = PCA(n_components=5).fit(data.numpy())
    n = len(data)
    reference = torch.from_numpy(pca.get_covariance()) * (n - 1) / n
    assert torch.allclose(covariance, reference, atol=1e-9)
    assert torch.allclose(mean, torch.from_numpy(pca.mean_))


def test_fixed_variance_fit_is_the_maximum_by_brute_force(data: torch.Tensor) -> None:
    """At σ² = 2, W = U_q(Λ_q − σ²)₊^½ has the highest likelihood: L-BFGS over W from
    random starts finds no better one, and gets as high."""
    sigma2 = 2.0
    mean, covariance = ppca_fit(data, 5, sigma2=sigma2)
    closed = float(gaussian_log_density(data, mean, covariance).mean())
    # directions of sample eigenvalue ≤ σ² get no column: rank(C − σ²I) is the count above
    centred = data - data.mean(0)
    eigenvalues = torch.linalg.eigvalsh(centred.T @ centred / len(data)).flip(0)
    kept = int((eigenvalues[:5] > sigma2).sum())
    assert kept == 3
    assert torch.linalg.matrix_rank(covariance - sigma2 * torch.eye(10)) == kept
    best = -math.inf
    for seed in range(2):
        w = torch.randn(10, 5, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        w.requires_grad_(True)
        optimizer = torch.optim.LBFGS([w], max_iter=300, line_search_fn="strong_wolfe")

        def loss(w=w, optimizer=optimizer) -> torch.Tensor:
            optimizer.zero_grad()
            c = w @ w.T + sigma2 * torch.eye(10, dtype=torch.float64)
            value = -gaussian_log_density(data, mean, c).mean()
            value.backward()
            return value

        optimizer.step(loss)
        best = max(best, -float(loss().detach()))
    assert best <= closed + 1e-9
    assert best == pytest.approx(closed, abs=1e-6)


def exact_posterior_vae(train: torch.Tensor, sigma2: float | None) -> VAEModule:
    """A linear VAE set to the ML pPCA of `train` with its exact posterior (Tipping &
    Bishop: mean M⁻¹Wᵀ(x − μ), covariance σ²M⁻¹, M = WᵀW + σ²I, diagonal for W = U(Λ−σ²)^½)."""
    x = train.double()
    mean = x.mean(0)
    eigenvalues, vectors = torch.linalg.eigh((x - mean).T @ (x - mean) / len(x))
    eigenvalues, vectors = eigenvalues.flip(0), vectors.flip(1)
    fitted = float(eigenvalues[5:].mean()) if sigma2 is None else sigma2
    w = vectors[:, :5] * (eigenvalues[:5] - fitted).clamp_min(0).sqrt()
    m = w.T @ w + fitted * torch.eye(5, dtype=torch.float64)
    model = LinearVAE(10, 5).double()
    with torch.no_grad():
        model.decoder.weight.copy_(w)
        model.decoder.bias.copy_(mean)
        model.encoder.weight.copy_(torch.linalg.solve(m, w.T))
        model.encoder.bias.copy_(-torch.linalg.solve(m, w.T) @ mean)
        model.posterior_logvar.copy_(torch.log(fitted / torch.diagonal(m)))
    recon = GaussianReconstruction("recon_gaussian", sigma2=fitted).double()
    return VAEModule(model, Objective([recon, KLDivergence("kl")]), iw_samples=16)


@pytest.mark.parametrize("sigma2", [None, 2.0])
def test_elbo_of_the_exact_posterior_is_the_ppca_log_likelihood(data, sigma2) -> None:
    """Lucas et al. 2019: at the pPCA optimum the linear VAE's ELBO is tight: every log
    importance weight equals log p(x) exactly, whatever z was drawn."""
    train, val = data[:1500], data[1500:]
    module = exact_posterior_vae(train, sigma2).eval()
    torch.manual_seed(0)
    mu, logvar = module.model.encode(val)
    log_w = module.log_weights(val, mu, logvar)
    mean, covariance = ppca_fit(train, 5, sigma2)
    exact = gaussian_log_density(val, mean, covariance)
    assert log_w.shape == (len(val), 16)
    assert torch.allclose(log_w, exact[:, None].expand_as(log_w), atol=1e-9)
    units = ActiveUnits(5)
    units.update({"mu": mu})
    assert int(units.compute()) == (5 if sigma2 is None else 3)


def test_bounds_from_the_same_samples_by_hand() -> None:
    g = torch.Generator().manual_seed(0)
    log_w = torch.randn(7, 5, generator=g) * 3 - 20
    metric = ImportanceSampledBounds()
    metric.update({"log_w": log_w[:3]})
    metric.update({"log_w": log_w[3:]})
    figures = metric.compute()
    by_hand_elbo = sum(sum(row) / 5 for row in log_w.double().tolist()) / 7
    by_hand_iw = sum(math.log(sum(math.exp(v) for v in row) / 5) for row in log_w.double().tolist())
    assert float(figures["elbo"]) == pytest.approx(by_hand_elbo, rel=1e-12)
    assert float(figures["nll_iw"]) == pytest.approx(-by_hand_iw / 7, rel=1e-12)
    assert figures["nll_iw"] <= -figures["elbo"]
    # equal weights: the bound is the ELBO, never above it by rounding
    flat = ImportanceSampledBounds()
    flat.update({"log_w": torch.full((4, 64), -16.913)})
    assert float(flat.compute()["nll_iw"]) <= -float(flat.compute()["elbo"])


def test_active_units_and_kl_per_unit_by_hand() -> None:
    g = torch.Generator().manual_seed(1)
    mu = torch.randn(200, 3, generator=g) * torch.tensor([1.0, 0.05, 0.2])
    logvar = torch.randn(200, 3, generator=g) * 0.1
    units = ActiveUnits(3, threshold=0.01)
    units.update({"mu": mu[:120]})
    units.update({"mu": mu[120:]})
    assert torch.allclose(units.variances(), mu.double().var(0, correction=0), atol=1e-12)
    assert int(units.compute()) == int((mu.var(0, correction=0) > 0.01).sum()) == 2
    kl = KLPerDimension(3)
    kl.update({"mu": mu, "logvar": logvar})
    figures = kl.compute()
    by_hand = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).double().mean(0)
    for d in range(3):
        assert float(figures[f"kl_dim/{d}"]) == pytest.approx(float(by_hand[d]), rel=1e-6)
    assert float(figures["kl"]) == pytest.approx(float(by_hand.sum()), rel=1e-6)
