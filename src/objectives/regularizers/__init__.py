"""Regularizers. Parameter penalties R(θ) (`l1`, `l2`, `elastic_net`) take the list of
parameters and return a scalar; `closed_form_gradient` gives the gradient of those that
have one. `GradientPenalty` and `R1Penalty` are terms on a GAN critic's input gradient."""

from __future__ import annotations

from typing import TYPE_CHECKING

from objectives.regularizers.norms import closed_form_gradient, elastic_net, l1, l2

if TYPE_CHECKING:
    from objectives.regularizers.critic import GradientPenalty, R1Penalty

__all__ = ["GradientPenalty", "R1Penalty", "closed_form_gradient", "elastic_net", "l1", "l2"]

# The critic penalties subclass objectives.objective.Term, whose module imports this package
# (for closed_form_gradient): they are loaded on first use, not here, to avoid an import cycle.
_CRITIC = {"GradientPenalty", "R1Penalty"}


def __getattr__(name: str) -> object:
    if name in _CRITIC:
        from objectives.regularizers import critic

        return getattr(critic, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
