"""Regularizers. Parameter penalties R(θ) (`l1`, `l2`, `elastic_net`) take the list of
parameters and return a scalar, each carrying its closed-form gradient
(`closed_form_gradient(fn)` reads it). `GradientPenalty` and `R1Penalty` are terms on a
GAN critic's input gradient."""

from objectives.objective.closed_form import closed_form_gradient
from objectives.regularizers.critic import GradientPenalty, R1Penalty
from objectives.regularizers.norms import elastic_net, l1, l2

__all__ = ["GradientPenalty", "R1Penalty", "closed_form_gradient", "elastic_net", "l1", "l2"]
