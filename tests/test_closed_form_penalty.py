"""Penalties with a closed-form gradient train through one autograd node, and that node
gives exactly the gradient autograd derives through the penalty's own graph."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from objectives.objective import ParameterPenalty
from objectives.objective.closed_form import ClosedFormPenalty
from objectives.regularizers import closed_form_gradient, elastic_net, l1, l2

PENALTIES = {"l1": l1, "l2": l2, "elastic_net": functools.partial(elastic_net, l1_ratio=0.3)}


def network() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 3))


def through_autograd(fn, net: nn.Module, weight: float) -> list[torch.Tensor]:
    params = list(net.parameters())
    return list(torch.autograd.grad(weight * fn(params), params))


@pytest.mark.parametrize("name", sorted(PENALTIES))
def test_the_term_trains_through_one_node_with_autograds_gradient(name: str) -> None:
    fn, net = PENALTIES[name], network()
    term = ParameterPenalty(name, fn, weight=0.01)
    term.bind(net)
    value = term.raw({})
    assert type(value.grad_fn).__name__ == "ClosedFormPenaltyBackward"
    assert value.item() == fn(list(net.parameters())).item()  # the value is untouched
    params = list(net.parameters())
    fused = torch.autograd.grad(0.01 * value, params)
    for got, want in zip(fused, through_autograd(fn, net, 0.01), strict=True):
        if name == "elastic_net":  # ρ·sign + (1−ρ)·θ vs autograd's two products: rounding
            assert torch.allclose(got, want, rtol=1e-6, atol=1e-9)
        else:
            assert torch.equal(got, want)


@pytest.mark.parametrize("name", sorted(PENALTIES))
def test_gradient_and_second_derivative_match_finite_differences(name: str) -> None:
    fn = PENALTIES[name]
    torch.manual_seed(1)
    params = [torch.randn(3, 4, dtype=torch.float64, requires_grad=True),
              torch.randn(5, dtype=torch.float64, requires_grad=True)]  # fmt: skip
    gradient = closed_form_gradient(fn)

    def penalty(*p):
        return ClosedFormPenalty.apply(fn, gradient, *p)

    assert torch.autograd.gradcheck(penalty, params)
    if name != "l1":  # |θ| has no second derivative at the kinks finite differences probe
        assert torch.autograd.gradgradcheck(penalty, params)


def test_a_penalty_without_a_closed_form_goes_through_autograd() -> None:
    def cubes(params):
        return torch.stack([p.pow(3).sum() for p in params]).sum()

    net = network()
    term = ParameterPenalty("cubes", cubes, weight=1.0)
    term.bind(net)
    value = term.raw({})
    assert type(value.grad_fn).__name__ != "ClosedFormPenaltyBackward"
    assert term.closed_form_gradient() is None
    grads = torch.autograd.grad(value, list(net.parameters()))
    for g, p in zip(grads, net.parameters(), strict=True):
        assert torch.allclose(g, 3 * p.detach() ** 2)


def test_frozen_parameters_get_no_gradient_and_validation_builds_no_graph() -> None:
    net = network()
    term = ParameterPenalty("l2", l2)
    term.bind(net)
    with torch.no_grad():
        assert not term.raw({}).requires_grad
    net[0].weight.requires_grad_(False)
    term.raw({}).backward()
    assert net[0].weight.grad is None
    assert torch.equal(net[2].weight.grad, 2 * net[2].weight.detach())
