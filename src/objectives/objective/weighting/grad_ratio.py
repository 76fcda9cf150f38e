"""`weighting=grad_ratio`: one term's weight from the ratio of gradient norms at a probe
layer, VQGAN's adaptive weight (taming-transformers, `calculate_adaptive_weight`):

    λ = ‖∇_W (w_r·L_ref)‖ / (‖∇_W L_bal‖ + ε),  clamped to [0, max_weight], detached
    w_bal,t = w_bal · λ

W is the probe layer (`layer`, a parameter name; default the network's last weight
matrix). The balanced term then pulls on W as hard as the reference does, times its
configured weight w_bal, whatever its scale: scaling L_bal by k scales ‖∇L_bal‖ by k and λ
by 1/k. VQGAN's ε = 1e-4 is absolute (`eps_mode: absolute`) and breaks that invariance
for small gradients; `eps_mode: relative` uses max(‖∇L_bal‖, ε·‖∇(w_r·L_ref)‖) as the
denominator, which guards a vanishing ‖∇L_bal‖ (λ ≤ 1/ε) and is exactly invariant
whenever the guard is not reached. (An additive relative ε, ‖∇L_bal‖ + ε·‖∇L_ref‖, is not:
the scaled run's λ·k differs by a factor 1 + ε·‖∇L_ref‖/‖∇L_bal‖·(1 − 1/k).)

Cost: the two terms' gradients at W only (`Objective.term_gradients`, one autograd.grad
each, on the step's own graph), at every training step; evaluation steps use the last
training step's λ, which is a buffer and so in the checkpoint.
"""

from __future__ import annotations

import torch
from torch import nn

from objectives import checks
from objectives.errors import ConfigError
from objectives.objective.objective import Objective, ObjectiveValue
from objectives.objective.weighting.base import WeightingPolicy, grads_wanted, reweighted


def last_weight_matrix(network: nn.Module) -> str:
    """The name of the last trainable parameter with two or more dimensions (the last
    layer's weight), as VQGAN probes its decoder's last layer."""
    names = [n for n, p in network.named_parameters() if p.requires_grad and p.ndim >= 2]
    if not names:
        raise ConfigError(
            f"weighting=grad_ratio found no weight matrix in {type(network).__name__} to probe; "
            "name a parameter with weighting.layer=<name>"
        )
    return names[-1]


class GradRatio(WeightingPolicy):
    """Balance `term` against `reference` at the probe parameter `layer`."""

    label = "grad_ratio"

    def __init__(
        self,
        term: str,
        reference: str,
        layer: str | None = None,
        eps: float = 1e-4,
        eps_mode: str = "absolute",
        max_weight: float = 1e4,
    ) -> None:
        if term == reference:
            raise ConfigError(
                f"weighting.term and weighting.reference are both {term}; balance one term "
                "against another, e.g. weighting.reference=mse"
            )
        super().__init__([term, reference], keys=["weighting.term", "weighting.reference"])
        self.term, self.reference, self.layer = str(term), str(reference), layer
        self.eps = checks.number(eps, "weighting.eps", low=0, low_open=True, example=1e-4)
        self.eps_mode = checks.one_of(eps_mode, "weighting.eps_mode", ("absolute", "relative"))
        self.max_weight = checks.number(
            max_weight, "weighting.max_weight", low=0, low_open=True, example=1e4
        )
        self.register_buffer("ratio", torch.ones(()))  # the last training step's λ
        self.probe: list[nn.Parameter] = []  # a plain list: the network owns the parameter

    def attach(self, objective: Objective) -> GradRatio:
        super().attach(objective)
        self.weighs = [self.term]
        return self

    def bind(self, network: nn.Module) -> None:
        name = self.layer if self.layer is not None else last_weight_matrix(network)
        parameters = dict(network.named_parameters())
        if name not in parameters or not parameters[name].requires_grad:
            candidates = [n for n, p in parameters.items() if p.requires_grad][-3:]
            raise ConfigError(
                f"weighting.layer={name} is not a trainable parameter of "
                f"{type(network).__name__}; e.g. weighting.layer={candidates[-1]} "
                f"(its last ones: {', '.join(candidates)})"
            )
        self.probe = [parameters[name]]

    def adaptive_ratio(self, reference_norm: torch.Tensor, term_norm: torch.Tensor):
        """λ from the two gradient norms at the probe layer, clamped and detached."""
        if self.eps_mode == "absolute":
            denominator = term_norm + self.eps
        else:  # + the smallest normal number: 0/0 (both gradients zero) gives λ = 0
            tiny = torch.finfo(term_norm.dtype).tiny
            denominator = torch.maximum(term_norm, self.eps * reference_norm) + tiny
        return (reference_norm / denominator).clamp(0.0, self.max_weight).detach()

    def forward(self, objective: Objective, value: ObjectiveValue, step: int) -> ObjectiveValue:
        base = value.weights[self.term]
        if grads_wanted(self, value) and base != 0:
            rows = objective.term_gradients(
                value, self.probe, step, names=(self.term, self.reference)
            )
            norms = rows.norm(dim=1)
            order = [n for n in objective.names if n in (self.term, self.reference)]
            term_norm = norms[order.index(self.term)] / base  # ‖∇L_bal‖, before its weight
            ratio = self.adaptive_ratio(norms[order.index(self.reference)], term_norm)
            self.ratio.copy_(ratio)
        else:
            ratio = self.ratio
        return reweighted(value, {self.term: ratio * base})
