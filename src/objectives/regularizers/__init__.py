"""Parameter penalties R(θ). Each takes the list of parameters and returns a scalar."""

from objectives.regularizers.norms import elastic_net, l1, l2

__all__ = ["elastic_net", "l1", "l2"]
