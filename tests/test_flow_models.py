"""The flows' own arithmetic against independent truths: each log-determinant against the
slogdet of autograd's Jacobian (float64), each inverse against its input, the
dequantisation's log-det likewise, and the known densities against closed forms."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from objectives.data.gaussian import gaussian, gaussian_log_density
from objectives.data.ring import ring
from objectives.data.ring_density import ring_log_density
from objectives.errors import ConfigError
from objectives.models.realnvp import RealNVP
from objectives.models.rq_spline import rq_spline
from objectives.models.spline_flow import SplineFlow
from objectives.tasks.flow_inputs import Dequantization

FLOWS = {
    "realnvp": lambda d: RealNVP(d, layers=4, hidden=[16, 16], scale_cap=2.0),
    # a narrow tail bound: some rows cross it, so the identity tails are checked too
    "spline_flow": lambda d: SplineFlow(d, layers=3, hidden=[16], bins=5, tail_bound=1.5),
}


def randomised(flow: nn.Module, seed: int = 0, spread: float = 0.6) -> nn.Module:
    """A float64 flow away from its identity start (its conditioners end in zeros)."""
    generator = torch.Generator().manual_seed(seed)
    flow = flow.double()
    with torch.no_grad():
        for p in flow.parameters():
            p.copy_(spread * torch.randn(p.shape, generator=generator, dtype=p.dtype))
    return flow


@pytest.mark.parametrize("name", FLOWS)
@pytest.mark.parametrize("features", [2, 3, 5])
def test_log_det_is_the_jacobian_slogdet(name: str, features: int) -> None:
    flow = randomised(FLOWS[name](features))
    x = 1.5 * torch.randn(
        6, features, generator=torch.Generator().manual_seed(1), dtype=torch.float64
    )
    z, log_det = flow(x)
    for row, value in zip(x, log_det, strict=True):
        jacobian = torch.autograd.functional.jacobian(lambda r: flow(r[None])[0][0], row)
        sign, expected = torch.linalg.slogdet(jacobian)
        assert sign > 0  # every layer is increasing in the features it changes
        assert abs(float(value.detach() - expected)) < 1e-9
    assert torch.isfinite(z).all()


@pytest.mark.parametrize("name", FLOWS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_inverse_reproduces_the_input(name: str, dtype: torch.dtype) -> None:
    # float64: the bound, on a flow far from the identity (slopes up to e^±8
    # over four layers); float32 rounds every layer's output, so a milder flow there
    spread, bound = (0.6, 1e-6) if dtype == torch.float64 else (0.2, 1e-5)
    flow = randomised(FLOWS[name](3), spread=spread).to(dtype)
    x = 1.5 * torch.randn(500, 3, generator=torch.Generator().manual_seed(2)).to(dtype)
    with torch.no_grad():
        back = flow.inverse(flow(x)[0])
        assert (back - x).abs().max() < bound
        z = torch.randn(500, 3, generator=torch.Generator().manual_seed(3)).to(dtype)
        assert (flow(flow.inverse(z))[0] - z).abs().max() < (
            1e-9 if dtype == torch.float64 else 1e-5
        )


@pytest.mark.parametrize("name", FLOWS)
def test_a_new_flow_is_the_identity(name: str) -> None:
    x = torch.randn(20, 4)
    z, log_det = FLOWS[name](4)(x)
    assert torch.allclose(z, x, atol=1e-6) and log_det.abs().max() < 1e-5


def test_the_spline_is_monotone_and_inverted_exactly() -> None:
    generator = torch.Generator().manual_seed(4)
    x = torch.linspace(-4, 4, 40_001, dtype=torch.float64)
    params = torch.randn(1, 3 * 7 - 1, generator=generator, dtype=torch.float64).expand(len(x), -1)
    y, log_slope = rq_spline(x, params, bound=3.0)
    assert (y.diff() > 0).all()
    assert torch.equal(y[x.abs() > 3], x[x.abs() > 3])  # identity tails
    # central differences: O(h²) inside a bin, O(h) at a knot (the spline is only C¹ there)
    numeric = (y[2:] - y[:-2]) / (x[2:] - x[:-2])
    assert torch.allclose(log_slope[1:-1].exp(), numeric, rtol=5e-3)
    back, _ = rq_spline(y, params, bound=3.0, inverse=True)
    assert (back - x).abs().max() < 1e-10


def test_dequantisation_log_det_is_the_jacobian() -> None:
    """x̃ = (x·(L−1) + u)/L: ∂y/∂x̃ = L·∂y/∂u, a diagonal Jacobian."""
    levels = 17
    inputs = Dequantization(levels, alpha=0.05)
    pixels = torch.randint(levels, (4, 6), generator=torch.Generator().manual_seed(5))
    x = pixels.double() / (levels - 1)
    u = torch.rand(4, 6, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    y, log_det = inputs(x, u)
    for i in range(len(x)):
        jacobian = torch.autograd.functional.jacobian(
            lambda v, i=i: inputs(x[i : i + 1], v)[0][0], u[i]
        )
        expected = torch.linalg.slogdet(jacobian * levels)[1]
        assert abs(float(log_det[i] - expected)) < 1e-9
    x_tilde = (x * (levels - 1) + u) / levels
    assert (inputs.inverse(y) - x_tilde).abs().max() < 1e-12


def test_the_gaussian_density_is_the_closed_form() -> None:
    mean, covariance = [1.0, -0.5], [[2.0, 1.2], [1.2, 1.0]]
    x, _ = gaussian(2000, mean, covariance, seed=7)
    d = x.double() - torch.tensor(mean, dtype=torch.float64)
    (a, b), (_, c) = covariance
    det = a * c - b * b
    quadratic = (c * d[:, 0] ** 2 - 2 * b * d[:, 0] * d[:, 1] + a * d[:, 1] ** 2) / det
    expected = -0.5 * quadratic - math.log(2 * math.pi) - 0.5 * math.log(det)
    assert torch.allclose(gaussian_log_density(x, mean, covariance), expected, atol=1e-12)
    # its mean NLL is the entropy ½ ln((2πe)² det Σ) up to sampling error
    entropy = math.log(2 * math.pi * math.e) + 0.5 * math.log(det)
    assert abs(float(-expected.mean()) - entropy) < 0.05


def test_the_ring_density_has_the_closed_form_entropy() -> None:
    """8 separated N(c_k, σ²I₂): H = ln 8 + ln(2πeσ²) = 0.312 nats at σ = 0.1."""
    entropy = math.log(8) + math.log(2 * math.pi * math.e * 0.01)
    assert entropy == pytest.approx(0.312, abs=5e-4)
    x, _ = ring(20_000, std=0.1, seed=8)
    assert float(-ring_log_density(x, std=0.1).mean()) == pytest.approx(entropy, abs=0.02)
    # a density: it integrates to 1 over a box that holds the ring
    grid = torch.linspace(-3, 3, 601, dtype=torch.float64)
    points = torch.cartesian_prod(grid, grid)
    cell = float(grid[1] - grid[0]) ** 2
    assert float(ring_log_density(points, std=0.1).exp().sum()) * cell == pytest.approx(1, abs=1e-6)


@pytest.mark.parametrize(
    ("build", "words"),
    [
        (lambda: RealNVP(1), "nothing to condition on"),
        (lambda: RealNVP(2, layers=0), "model.layers=0"),
        (lambda: RealNVP(2, scale_cap=0.0), "model.scale_cap"),
        (lambda: SplineFlow(2, bins=0), "model.bins"),
        (lambda: SplineFlow(2, bins=1000), "model.bins=1000"),
        (lambda: SplineFlow(2, tail_bound=-1.0), "model.tail_bound"),
        (lambda: Dequantization(1), "task.dequantize=1"),
        (lambda: gaussian(10, [0, 0], [[1, 2], [2, 1]]), "positive definite"),
    ],
)
def test_settings_that_cannot_make_a_flow_are_refused(build, words: str) -> None:
    with pytest.raises(ConfigError, match=words.replace(".", r"\.")) as err:
        build()
    assert "\n" not in str(err.value)
