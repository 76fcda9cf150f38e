"""The VAE's terms against independent truths: torch's summed losses, a Monte-Carlo KL,
hand-computed free bits and capacity, and float64 gradchecks."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Independent, Normal, kl_divergence

from objectives.errors import ConfigError
from objectives.losses.vae import (
    BernoulliReconstruction,
    GaussianReconstruction,
    KLDivergence,
    bernoulli_log_likelihood,
    gaussian_log_likelihood,
    kl_standard_normal,
)
from objectives.objective.weights import LinearRamp


def rows(seed: int = 0, shape=(6, 1, 4, 4), dtype=torch.float32) -> tuple:
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(*shape, generator=g, dtype=dtype),
        torch.rand(*shape, generator=g, dtype=dtype),
    )


def test_bernoulli_term_is_bce_with_logits_summed_per_sample_then_averaged() -> None:
    logits, x = rows()
    term = BernoulliReconstruction("recon_bernoulli")
    expected = torch.nn.BCEWithLogitsLoss(reduction="sum")(logits, x) / len(x)
    assert torch.allclose(term.raw({"recon": logits, "x": x}), expected, rtol=1e-6)
    # not a mean over pixels: 16 pixels a sample weigh 16 times one pixel's BCE
    mean = torch.nn.BCEWithLogitsLoss()(logits, x)
    assert torch.allclose(term.raw({"recon": logits, "x": x}), 16 * mean, rtol=1e-5)


@pytest.mark.parametrize("sigma2", [None, 0.3, 2.0])
def test_gaussian_term_is_gaussian_nll_summed_per_sample(sigma2: float | None) -> None:
    mean, x = rows(1)
    term = GaussianReconstruction("recon_gaussian", sigma2=sigma2, init_sigma2=0.7)
    variance = 0.7 if sigma2 is None else sigma2
    torch_nll = torch.nn.GaussianNLLLoss(full=True, reduction="sum")(
        mean, x, torch.full_like(mean, variance)
    )
    assert torch.allclose(term.raw({"recon": mean, "x": x}), torch_nll / len(x), rtol=1e-6)
    by_hand = 0.5 * (math.log(2 * math.pi * variance) + (x - mean) ** 2 / variance)
    assert torch.allclose(term.raw({"recon": mean, "x": x}), by_hand.sum() / len(x), rtol=1e-5)


def test_learned_variance_is_a_parameter_and_a_fixed_one_is_not() -> None:
    learned = GaussianReconstruction("r", sigma2=None, init_sigma2=1.5)
    fixed = GaussianReconstruction("r", sigma2=2.0)
    assert [p.shape for p in learned.parameters()] == [torch.Size([])]
    assert float(learned.sigma2.detach()) == pytest.approx(1.5)
    assert list(fixed.parameters()) == [] and float(fixed.sigma2) == pytest.approx(2.0)
    assert "log_sigma2" in fixed.state_dict()  # a buffer: checkpointed, not trained
    # the optimum of σ² for a fixed mean is the mean squared residual a dimension
    mean, x = rows(2, shape=(500, 3))
    residual = ((x - mean) ** 2).mean()
    optimizer = torch.optim.Adam(learned.parameters(), lr=0.05)
    for _ in range(400):
        optimizer.zero_grad()
        learned.raw({"recon": mean, "x": x}).backward()
        optimizer.step()
    assert float(learned.sigma2.detach()) == pytest.approx(float(residual), rel=1e-3)


def test_analytic_kl_matches_monte_carlo_within_three_standard_errors() -> None:
    g = torch.Generator().manual_seed(3)
    mu, logvar = (
        torch.randn(3, 4, generator=g, dtype=torch.float64),
        torch.randn(3, 4, generator=g, dtype=torch.float64),
    )
    q = Independent(Normal(mu, (0.5 * logvar).exp()), 1)
    p = Independent(Normal(torch.zeros_like(mu), torch.ones_like(mu)), 1)
    samples = q.sample((100_000,))
    per_draw = (q.log_prob(samples) - p.log_prob(samples)).mean(1)  # the batch mean a draw
    estimate = per_draw.mean()
    standard_error = per_draw.std() / math.sqrt(len(per_draw))
    analytic = kl_standard_normal(mu, logvar)
    assert abs(float(analytic - estimate)) < 3 * float(standard_error)
    assert torch.allclose(analytic, kl_divergence(q, p).mean())  # and torch's closed form


def test_free_bits_floor_each_unit_at_lambda_by_hand() -> None:
    # logvar = 0: KL_d = μ²/2. Batch means: unit 0: (1/2 + 1/2)/2 = 0.5; unit 1:
    # (0.04/2 + 0.16/2)/2 = 0.05, below λ = 0.1, so it counts 0.1: 0.6 in all
    mu = torch.tensor([[1.0, 0.2], [1.0, 0.4]], requires_grad=True)
    logvar = torch.zeros(2, 2)
    term = KLDivergence("kl", free_bits=0.1)
    value = term.raw({"mu": mu, "logvar": logvar})
    assert float(value.detach()) == pytest.approx(0.6)
    value.backward()
    assert mu.grad[:, 1].abs().max() == 0  # no pull on a unit below its floor
    assert torch.allclose(mu.grad[:, 0], torch.tensor([0.5, 0.5]))  # ∂(Σμ₀²/4)/∂μ₀ = μ₀/2


def test_capacity_is_distance_to_a_scheduled_capacity_by_hand() -> None:
    # KL = (1/2 + 1/2)/2 + (0.04/2 + 0.16/2)/2 = 0.55 nats a sample
    mu, logvar = torch.tensor([[1.0, 0.2], [1.0, 0.4]]), torch.zeros(2, 2)
    term = KLDivergence("kl", capacity={"schedule": "linear", "start": 0, "end": 2, "steps": 100})
    assert "step" in term.reads
    for step, capacity in [(0, 0.0), (25, 0.5), (50, 1.0), (500, 2.0)]:
        value = term.raw({"mu": mu, "logvar": logvar, "step": step})
        assert float(value) == pytest.approx(abs(0.55 - capacity)), step
    fixed = KLDivergence("kl", capacity=LinearRamp(0.3, 0.3, 1))
    assert float(fixed.raw({"mu": mu, "logvar": logvar, "step": 7})) == pytest.approx(0.25)


def test_kl_settings_are_refused_with_one_line() -> None:
    with pytest.raises(ConfigError, match="free_bits and capacity"):
        KLDivergence("kl", free_bits=0.5, capacity=3.0)
    with pytest.raises(ConfigError, match=r"loss\.kl\.free_bits"):
        KLDivergence("kl", free_bits=-1)
    with pytest.raises(ConfigError, match=r"loss\.recon_gaussian\.sigma2"):
        GaussianReconstruction("recon_gaussian", sigma2=0)


def test_gradcheck_in_float64() -> None:
    logits, x = rows(4, shape=(3, 5), dtype=torch.float64)
    logits.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: bernoulli_log_likelihood(a, x), (logits,))
    mean = logits.detach().clone().requires_grad_(True)
    variance = torch.tensor(0.8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda m, v: gaussian_log_likelihood(m, x, v), (mean, variance))
    g = torch.Generator().manual_seed(5)
    mu = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    logvar = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    for term, extra in [
        (KLDivergence("kl"), {}),
        (KLDivergence("kl", free_bits=0.01), {}),  # every unit above the floor here
        (KLDivergence("kl", capacity=0.1), {"step": 0}),  # KL ≠ C: |·| is smooth here
    ]:
        assert torch.autograd.gradcheck(
            lambda m, lv, t=term, e=extra: t.raw({"mu": m, "logvar": lv, **e}), (mu, logvar)
        )
