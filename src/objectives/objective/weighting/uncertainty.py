"""`weighting=uncertainty` (Kendall, Gal & Cipolla 2018): each chosen term Lᵢ gets a
learnable log-variance sᵢ = log σᵢ², trained with the model, and J becomes

    J = Σᵢ e^{−sᵢ}·wᵢ·Lᵢ + sᵢ        (+ the other terms as they are)

For a Gaussian likelihood the paper writes ½·e^{−sᵢ}·Lᵢ + ½·sᵢ (regression) and
e^{−sᵢ}·Lᵢ + ½·sᵢ (classification); this is twice the regression form, so it has the same
minimiser and the weight eᵢ = e^{−sᵢ} settles where ∂J/∂sᵢ = 0, at e^{−sᵢ} = 1/(wᵢ·Lᵢ): an
MSE term at its noise floor σᵢ² gets the weight 1/σᵢ². `train/weight/<term>` is
e^{−sᵢ}·wᵢ; `train/term/<term>` holds e^{−sᵢ}·wᵢ·Lᵢ + sᵢ, so the terms still sum to the
objective. sᵢ goes negative once Lᵢ < 1, and with it the objective: that is expected, not a
bug (J is a negative log-likelihood up to a constant, not a loss bounded below by 0).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from objectives import checks
from objectives.objective.objective import Objective, ObjectiveValue
from objectives.objective.weighting.base import WeightingPolicy, summed


class Uncertainty(WeightingPolicy):
    """A log-variance a chosen term (`terms`, default every loss), starting at `init`."""

    label = "uncertainty"

    def __init__(self, terms: Sequence[str] | None = None, init: float = 0.0) -> None:
        super().__init__(terms)
        self.init = checks.number(init, "weighting.init", example=0.0)

    def attach(self, objective: Objective) -> Uncertainty:
        super().attach(objective)
        self.log_variance = nn.Parameter(torch.full((len(self.weighs),), self.init))
        return self

    def forward(self, objective: Objective, value: ObjectiveValue, step: int) -> ObjectiveValue:
        weighted = dict(value.weighted)
        weights = dict(value.weights)
        precision = torch.exp(-self.log_variance)
        for i, name in enumerate(self.weighs):
            weight = precision[i] * value.weights[name]
            weighted[name] = value.raw[name] * weight + self.log_variance[i]
            weights[name] = weight.detach()
        return ObjectiveValue(summed(weighted.values()), value.raw, weighted, weights)
