"""What a weighting policy is: a module the objective hands each step's value to.

The objective computes every term's raw value and its configured weight (a constant or a
schedule, objective/weights.py); a policy then decides the weights it trains with this
step and returns the `ObjectiveValue` whose `total` the step differentiates. A policy is a
submodule of its objective, so its parameters (uncertainty's log-variances) train with the
model and its state is in every checkpoint; it never holds the objective itself (the
objective passes itself in), so the module tree has no cycle.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from objectives.errors import ConfigError
from objectives.objective.objective import Objective, ObjectiveValue


class WeightingPolicy(nn.Module):
    """Base class: `label` shows in the formula; `weighs` names the terms whose weight the
    policy sets (`w_t` in the formula)."""

    label: str = "policy"

    def __init__(
        self, terms: Sequence[str] | None = None, keys: Sequence[str] | None = None
    ) -> None:
        """`keys`: the config key that names each of `terms` (default `weighting.terms`),
        for a message that names a key the policy has."""
        super().__init__()
        self.requested = None if terms is None else [str(t) for t in terms]
        self.keys = list(keys) if keys is not None else None
        self.weighs: list[str] = []

    def attach(self, objective: Objective) -> WeightingPolicy:
        """Check the named terms exist; by default the policy weighs every loss."""
        names = objective.names
        if self.requested is None:
            self.weighs = [t.name for t in objective.terms if t.kind != "regularizer"]
        else:
            missing = [t for t in self.requested if t not in names]
            if missing:
                if self.keys is None:
                    key, example = "weighting.terms", f"[{','.join(names[:2])}]"
                else:
                    key, example = self.keys[self.requested.index(missing[0])], names[0]
                raise ConfigError(
                    f"{key}={missing[0]} is not a term of the objective "
                    f"({', '.join(names)}); e.g. {key}={example}"
                )
            self.weighs = list(self.requested)
        if not self.weighs:
            raise ConfigError(
                f"weighting={self.label} has no term to weigh (the objective is "
                f"{', '.join(names)}); name them with weighting.terms=[...]"
            )
        return self

    def bind(self, network: nn.Module) -> None:
        """The network whose parameters the policy reads gradients on (no-op by default)."""

    def forward(self, objective: Objective, value: ObjectiveValue, step: int) -> ObjectiveValue:
        raise NotImplementedError


def reweighted(value: ObjectiveValue, weights: dict[str, Tensor | float]) -> ObjectiveValue:
    """`value` with some terms' weights replaced: weighted = weight·raw, total re-summed."""
    weighted = dict(value.weighted)
    for name, weight in weights.items():
        weighted[name] = value.raw[name] * weight
    return ObjectiveValue(
        summed(weighted.values()), value.raw, weighted, {**value.weights, **weights}
    )


def summed(values) -> Tensor:
    total = None
    for v in values:
        total = v if total is None else total + v
    assert total is not None
    return total


def trainable(network: nn.Module) -> list[nn.Parameter]:
    return [p for p in network.parameters() if p.requires_grad]


def grads_wanted(policy: nn.Module, value: ObjectiveValue) -> bool:
    """Whether this evaluation is a training step's: the module in training mode, gradients
    on and J with a graph (not validation, nor a callback differentiating an eval-mode J with
    respect to its inputs, as the saliency figure does)."""
    return policy.training and torch.is_grad_enabled() and value.total.requires_grad
