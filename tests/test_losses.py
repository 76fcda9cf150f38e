"""Regression losses: torch's own behind the configs, ours against closed forms and gradcheck."""

from __future__ import annotations

import math

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from objectives.errors import ConfigError
from objectives.losses import QuantileLoss, log_cosh
from objectives.run.config import config_dir

TORCH_LOSSES = {
    "mse": nn.MSELoss,
    "mae": nn.L1Loss,
    "huber": nn.HuberLoss,
    "smooth_l1": nn.SmoothL1Loss,
    "cross_entropy": nn.CrossEntropyLoss,
}


@pytest.mark.parametrize("name", sorted(TORCH_LOSSES))
def test_configs_use_torchs_own_loss_modules(name: str) -> None:
    node = OmegaConf.load(config_dir() / "loss" / f"{name}.yaml")
    assert type(instantiate(node.fn)) is TORCH_LOSSES[name]


def test_the_seeds_good_and_bad_predictions() -> None:
    """The seed's comparison table, checked by hand for MSE and MAE."""
    y = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    good = torch.tensor([1.1, 2.1, 2.9, 4.2, 4.8])
    bad = torch.tensor([2.0, 1.0, 5.0, 2.0, 7.0])
    mse = instantiate(OmegaConf.load(config_dir() / "loss" / "mse.yaml").fn)
    mae = instantiate(OmegaConf.load(config_dir() / "loss" / "mae.yaml").fn)
    assert mse(good, y).item() == pytest.approx((0.01 + 0.01 + 0.01 + 0.04 + 0.04) / 5, rel=1e-5)
    assert mse(bad, y).item() == pytest.approx((1 + 1 + 4 + 4 + 4) / 5)
    assert mae(bad, y).item() == pytest.approx((1 + 1 + 2 + 2 + 2) / 5)


def test_log_cosh_matches_its_closed_form() -> None:
    pred = torch.tensor([0.0, 0.3, -2.0, 5.0], dtype=torch.float64)
    target = torch.tensor([0.0, -0.2, 1.0, 5.5], dtype=torch.float64)
    expected = torch.log(torch.cosh(pred - target)).mean()
    assert log_cosh(pred, target).item() == pytest.approx(expected.item(), rel=1e-12)


def test_log_cosh_does_not_overflow_for_huge_errors() -> None:
    """cosh(1000) is inf in float32; log cosh(e) → |e| − ln 2."""
    value = log_cosh(torch.tensor([1000.0]), torch.tensor([0.0]))
    assert value.item() == pytest.approx(1000.0 - math.log(2.0))


def test_log_cosh_gradcheck() -> None:
    pred = torch.randn(6, 1, dtype=torch.float64, requires_grad=True)
    target = torch.randn(6, 1, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda p: log_cosh(p, target), (pred,))


def test_quantile_matches_hand_computed_pinball() -> None:
    loss = QuantileLoss(q=0.9)
    pred = torch.tensor([1.0, 3.0])
    target = torch.tensor([2.0, 1.0])  # e = y − ŷ = [1, −2]
    expected = (0.9 * 1.0 + (0.9 - 1.0) * -2.0) / 2  # under-prediction costs q, over costs 1−q
    assert loss(pred, target).item() == pytest.approx(expected)


def test_quantile_half_is_half_the_mean_absolute_error() -> None:
    pred, target = torch.randn(20), torch.randn(20)
    assert QuantileLoss(0.5)(pred, target).item() == pytest.approx(
        0.5 * (pred - target).abs().mean().item(), rel=1e-6
    )


def test_quantile_minimiser_is_the_quantile() -> None:
    torch.manual_seed(0)
    samples = torch.randn(2001, dtype=torch.float64)
    candidates = torch.linspace(-3, 3, 6001, dtype=torch.float64)
    losses = torch.stack([QuantileLoss(0.8)(c.expand_as(samples), samples) for c in candidates])
    best = candidates[losses.argmin()]
    assert best.item() == pytest.approx(torch.quantile(samples, 0.8).item(), abs=2e-3)


def test_quantile_gradcheck() -> None:
    pred = torch.randn(6, dtype=torch.float64, requires_grad=True)
    target = pred.detach() + torch.tensor([0.5, -0.7, 1.1, -0.2, 0.9, -1.3], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda p: QuantileLoss(0.3)(p, target), (pred,))


@pytest.mark.parametrize("q", [0.0, 1.0, -0.5, 2.0])
def test_quantile_outside_zero_one_is_refused(q: float) -> None:
    with pytest.raises(ConfigError, match=r"loss\.quantile\.fn\.q must be a number in \(0, 1\)"):
        QuantileLoss(q)
