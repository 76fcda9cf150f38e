"""What a flow is judged by: the mean negative log-likelihood of the rows in nats, bits per
dimension for images, and, where the data's density is known, that density's NLL of the
same rows (the gap between the two is what the model has still to learn).

Each is a mean over rows of a per-row value the task computes (metric_inputs); the update
argument's name says which value a metric takes.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torchmetrics import Metric


class _RowMean(Metric):
    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("total", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("rows", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def _add(self, values: Tensor) -> None:
        self.total += values.detach().double().sum()
        self.rows += values.numel()

    def compute(self) -> Tensor:
        return (self.total / self.rows).float()


class NegativeLogLikelihood(_RowMean):
    """−log p(x) in nats a row, whatever weights the objective's terms carry."""

    def update(self, nll: Tensor) -> None:
        self._add(nll)


class ReferenceNLL(_RowMean):
    """−log p_data(x) in nats a row under the density that generated the data."""

    def update(self, true_nll: Tensor) -> None:
        self._add(true_nll)


class BitsPerDimension(_RowMean):
    """(NLL of x̃ ∈ [0, 1]^D + D ln L) / (D ln 2): with x̃ = (k + u)/L the uniformly
    dequantised pixels of L levels, this bounds −log₂ P(k) / D from above (Theis et al.
    2016: P(k) = L^−D E_u p(x̃) ≥ L^−D exp E_u log p(x̃))."""

    def __init__(self, features: int, levels: int) -> None:
        super().__init__()
        self.offset = features * math.log(levels)
        self.scale = features * math.log(2)

    def update(self, nll: Tensor) -> None:
        self._add((nll.double() + self.offset) / self.scale)
