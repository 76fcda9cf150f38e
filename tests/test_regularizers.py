"""Parameter penalties against hand-computed values, and which parameters they read."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from objectives.errors import ConfigError
from objectives.objective import ParameterPenalty, select_parameters
from objectives.regularizers import elastic_net, l1, l2


def tiny() -> nn.Module:
    net = nn.Sequential(nn.Linear(2, 1), nn.LayerNorm(1))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, -2.0]]))
        net[0].bias.fill_(3.0)
        net[1].weight.fill_(0.5)
        net[1].bias.fill_(-0.25)
    return net


def test_norms_match_hand_computed_values() -> None:
    params = list(tiny().parameters())
    assert l1(params).item() == pytest.approx(1 + 2 + 3 + 0.5 + 0.25)
    assert l2(params).item() == pytest.approx(1 + 4 + 9 + 0.25 + 0.0625)
    ratio = 0.3
    expected = ratio * 6.75 + 0.5 * (1 - ratio) * 14.3125
    assert elastic_net(params, l1_ratio=ratio).item() == pytest.approx(expected)


def test_exclude_bias_and_norm_keeps_only_weights_of_non_norm_layers() -> None:
    net = tiny()
    kept = select_parameters(net, exclude_bias_and_norm=True)
    assert len(kept) == 1 and kept[0] is net[0].weight
    assert len(select_parameters(net, exclude_bias_and_norm=False)) == 4


def test_frozen_parameters_are_not_penalised() -> None:
    net = tiny()
    net[0].weight.requires_grad_(False)
    assert all(p is not net[0].weight for p in select_parameters(net, False))


def test_l2_gradient_is_two_lambda_theta() -> None:
    """The seed's dw_reg = 2·λ·w."""
    net = tiny()
    term = ParameterPenalty("l2", l2, weight=0.01)
    term.bind(net)
    value = term.raw({}) * term.weight(0)
    value.backward()
    assert torch.allclose(net[0].weight.grad, 2 * 0.01 * net[0].weight.detach())


def test_a_penalty_with_nothing_to_read_is_refused_at_bind() -> None:
    term = ParameterPenalty("l2", l2, exclude_bias_and_norm=True)
    with pytest.raises(ConfigError, match="selects no trainable parameter"):
        term.bind(nn.LayerNorm(3))


@pytest.mark.parametrize("ratio", [-0.1, 1.5])
def test_elastic_net_ratio_outside_zero_one_fails_at_bind(ratio: float) -> None:
    from functools import partial

    term = ParameterPenalty("elastic_net", partial(elastic_net, l1_ratio=ratio))
    with pytest.raises(ConfigError, match="l1_ratio"):
        term.bind(tiny())
