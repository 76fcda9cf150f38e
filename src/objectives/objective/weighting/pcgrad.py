"""`weighting=pcgrad` (Yu et al. 2020, "Gradient surgery for multi-task learning"): each
chosen term's gradient gᵢ on the network's parameters is taken on its own; wherever it
conflicts with another term's gradient gⱼ (gᵢ·gⱼ < 0) its component along gⱼ is removed,

    gᵢ ← gᵢ − min(gᵢ·gⱼ, 0) / ‖gⱼ‖² · gⱼ      for j ≠ i in a random order,

and the step follows Σᵢ gᵢ (plus the unprojected gradients of the other terms, the
regularizers by default). Projecting after one summed backward would be wrong: the sum
has already mixed the directions. The order is drawn afresh each step from a generator
seeded by `seed` and the step, so a resumed run draws what the uninterrupted one drew.

Cost: T gradients (one autograd.grad a term, on the step's own graph: T backward passes)
and T·(T−1) dot products of parameter size, every training step. Lightning's own
backward then runs on J.detach() + S − S.detach() with S = ⟨θ, Σᵢ gᵢ⟩: its value is J
(what is logged) and its gradient the projected sum, so gradient accumulation, clipping
and mixed precision's loss scaling apply to it as to any loss.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from objectives import checks
from objectives.objective.objective import Objective, ObjectiveValue
from objectives.objective.weighting.base import WeightingPolicy, grads_wanted, summed, trainable


def project_conflicts(grads: Tensor, orders: Sequence[Sequence[int]]) -> Tensor:
    """Σᵢ of each row of `grads` (terms × parameters) with its conflicting components
    along the other rows removed, the others visited in `orders[i]`; no host read."""
    squared = (grads * grads).sum(dim=1).clamp_min(torch.finfo(grads.dtype).tiny)
    projected = []
    for i, order in enumerate(orders):
        g = grads[i]
        for j in order:
            if j != i:  # a zero gⱼ has a zero dot product: nothing removed
                g = g - (g @ grads[j]).clamp(max=0.0) / squared[j] * grads[j]
        projected.append(g)
    return torch.stack(projected).sum(dim=0)


class PCGrad(WeightingPolicy):
    """Project conflicting gradients of `terms` (default every loss) away, then sum."""

    label = "pcgrad"

    def __init__(self, terms: Sequence[str] | None = None, seed: int = 0) -> None:
        super().__init__(terms)
        self.seed = checks.integer(seed, "weighting.seed", low=0, example=0)
        self.parameters_read: list[nn.Parameter] = []  # a plain list: the network owns them

    def attach(self, objective: Objective) -> PCGrad:
        super().attach(objective)  # the terms asked for, by default every loss
        self.projected = self.weighs
        self.weighs = []  # the weights stay as configured: only the directions change
        return self

    def bind(self, network: nn.Module) -> None:
        self.parameters_read = trainable(network)

    def orders(self, count: int, step: int) -> list[list[int]]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        return [torch.randperm(count, generator=generator).tolist() for _ in range(count)]

    def forward(self, objective: Objective, value: ObjectiveValue, step: int) -> ObjectiveValue:
        if not grads_wanted(self, value):
            return value
        grads = objective.term_gradients(value, self.parameters_read, step, names=self.projected)
        direction = project_conflicts(grads, self.orders(len(grads), step)).detach()
        theta = torch.cat([p.reshape(-1) for p in self.parameters_read])
        surrogate = theta @ direction.to(theta.dtype)
        rest = [v for n, v in value.weighted.items() if n not in self.projected]
        chosen = summed(value.weighted[n] for n in self.projected).detach()
        total = summed([chosen, *rest, surrogate - surrogate.detach()])
        return ObjectiveValue(total, value.raw, value.weighted, value.weights)
