"""Objective and Term: totals, raw and weighted values, the formula, and bad weights."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from objectives.errors import ConfigError
from objectives.objective import (
    LinearRamp,
    LossTerm,
    Objective,
    ParameterPenalty,
    as_weight,
)
from objectives.regularizers import l2


def make_objective(l2_weight: float = 0.001) -> tuple[Objective, nn.Linear]:
    net = nn.Linear(1, 1)
    with torch.no_grad():
        net.weight.fill_(3.0)
        net.bias.fill_(-1.0)
    objective = Objective(
        [
            LossTerm("huber", nn.HuberLoss(), reads=("pred", "target"), symbol="huber(ŷ, y)"),
            ParameterPenalty("l2", l2, weight=l2_weight, symbol="‖θ‖₂²"),
        ]
    )
    return objective.bind(net), net


def test_total_is_the_weighted_sum_and_raw_values_are_kept() -> None:
    objective, _ = make_objective(l2_weight=0.5)
    pred, target = torch.tensor([[0.0], [3.0]]), torch.tensor([[0.5], [0.0]])
    value = objective({"pred": pred, "target": target})
    huber = (0.5 * 0.5**2 + (3.0 - 0.5)) / 2  # ½e² below δ=1, |e|−½ above
    assert value.raw["huber"].item() == pytest.approx(huber)
    assert value.raw["l2"].item() == pytest.approx(3.0**2 + 1.0**2)
    assert value.weighted["l2"].item() == pytest.approx(0.5 * 10.0)
    assert value.total.item() == pytest.approx(huber + 5.0)
    stacked = value.stacked()
    assert objective.stacked_names() == [
        "objective",
        "term/huber",
        "term/l2",
        "raw/huber",
        "raw/l2",
    ]
    assert stacked.tolist() == pytest.approx([huber + 5.0, huber, 5.0, huber, 10.0])
    assert not stacked.requires_grad


def test_gradient_of_the_objective_is_loss_gradient_plus_regularizer_gradient() -> None:
    """The seed's dw_total = dw_loss + dw_reg, with dw_reg = 2λw."""
    objective, net = make_objective(l2_weight=0.01)
    x = torch.linspace(0, 1, 8).unsqueeze(1)
    y = 2 * x + 1
    value = objective({"pred": net(x), "target": y})
    (dw_total,) = torch.autograd.grad(value.total, net.weight, retain_graph=True)
    (dw_loss,) = torch.autograd.grad(value.weighted["huber"], net.weight, retain_graph=True)
    assert torch.allclose(dw_total, dw_loss + 2 * 0.01 * net.weight.detach())


def test_formula_reads_like_the_math() -> None:
    objective, _ = make_objective()
    assert str(objective) == "J(θ) = 1·huber(ŷ, y) + 0.001·‖θ‖₂²"


def test_a_scheduled_weight_moves_with_the_step_and_shows_in_the_formula() -> None:
    net = nn.Linear(2, 1)
    term = ParameterPenalty("l2", l2, weight=LinearRamp(0.0, 1.0, steps=10), symbol="‖θ‖₂²")
    objective = Objective([LossTerm("mse", nn.MSELoss()), term]).bind(net)
    outputs = {"pred": torch.zeros(3, 1), "target": torch.zeros(3, 1)}
    raw = objective(outputs, step=0).raw["l2"]
    assert objective(outputs, step=0).weighted["l2"].item() == 0.0
    assert objective(outputs, step=5).weighted["l2"].item() == pytest.approx(0.5 * raw.item())
    assert objective(outputs, step=50).weighted["l2"].item() == pytest.approx(raw.item())
    assert "ramp(0→1, 10 steps)·‖θ‖₂²" in objective.formula()


@pytest.mark.parametrize("bad", [-1, -0.001, float("nan"), float("inf"), "abc", None, True, [1]])
def test_a_weight_that_is_not_a_finite_number_at_least_zero_is_refused(bad: object) -> None:
    with pytest.raises(ConfigError, match=r"regularizer\.l2: weight must be"):
        as_weight(bad, "regularizer.l2")


def test_a_negative_ramp_end_is_refused() -> None:
    with pytest.raises(ConfigError, match="weight must be a finite number ≥ 0"):
        as_weight(LinearRamp(1.0, -1.0, 5), "loss.mse")


def test_term_names_must_be_unique_and_an_objective_needs_a_term() -> None:
    with pytest.raises(ConfigError, match="unique names"):
        Objective([LossTerm("mse", nn.MSELoss()), LossTerm("mse", nn.L1Loss())])
    with pytest.raises(ConfigError, match="no term"):
        Objective([])


def test_a_loss_reading_an_output_the_task_lacks_is_named() -> None:
    objective = Objective(
        [LossTerm("cross_entropy", nn.CrossEntropyLoss(), reads=("logits", "target"))]
    )
    with pytest.raises(ConfigError) as err:
        objective.check_fits(("pred", "target"), task="regression")
    message = str(err.value)
    assert "loss 'cross_entropy' reads logits" in message
    assert "task 'regression' produces only pred, target" in message
    assert "\n" not in message


def test_an_unbound_penalty_says_so() -> None:
    term = ParameterPenalty("l2", l2)
    with pytest.raises(RuntimeError, match="not bound"):
        term.raw({})


def test_weights_never_force_a_sync() -> None:
    """Weights are Python floats: multiplying keeps the term a tensor on its device."""
    weight = as_weight(0.25, "loss.mse")
    assert isinstance(weight(123), float)
    assert math.isclose(weight(0), 0.25)
