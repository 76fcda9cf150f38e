"""A normalizing flow's two terms: −log p(x) = −log p_Z(f(x)) − log|det ∂f/∂x|.

Each is summed over a row's dimensions and averaged over the batch, so with weight 1 on
both J is the mean negative log-likelihood of the rows in nats (the data's own units;
task=flow adds a dequantisation's log-det to `log_det` for images). Kept apart, the two
show how the flow buys likelihood: the prior term falls as z gathers near 0, the
log-det term as f stretches where data is dense.
"""

from __future__ import annotations

import math

from torch import Tensor

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def standard_normal_nll(z: Tensor) -> Tensor:
    """−log N(z; 0, I) of each row, (N,)."""
    return (0.5 * z.square() + HALF_LOG_2PI).flatten(1).sum(1)


def prior_nll(z: Tensor) -> Tensor:
    """−E log p_Z(f(x)) under the standard normal prior."""
    return standard_normal_nll(z).mean()


def negative_log_det(log_det: Tensor) -> Tensor:
    """−E log|det ∂f/∂x|."""
    return -log_det.mean()
