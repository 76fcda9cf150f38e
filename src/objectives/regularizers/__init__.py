"""Parameter penalties R(θ). Each takes the list of parameters and returns a scalar;
`closed_form_gradient` gives the gradient of those that have one."""

from objectives.regularizers.norms import closed_form_gradient, elastic_net, l1, l2

__all__ = ["closed_form_gradient", "elastic_net", "l1", "l2"]
