"""Epoch means of the objective and its terms, one vector per stage.

One torchmetrics state holds [objective, terms..., raws...] summed with batch-size
weights, so an epoch's values cost one in-place add per step, and reducing them
across processes is one all-reduce at the epoch's end, weighted correctly when
batches differ in size.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric


class TermMeans(Metric):
    """Batch-size-weighted running mean of a fixed-length vector."""

    full_state_update = False
    total: Tensor
    count: Tensor

    def __init__(self, size: int) -> None:
        super().__init__()
        self.add_state(
            "total", default=torch.zeros(size, dtype=torch.float64), dist_reduce_fx="sum"
        )
        self.add_state("count", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, values: Tensor, batch_size: int) -> None:
        self.total += values.detach().to(self.total.dtype) * batch_size
        self.count += batch_size

    def compute(self) -> Tensor:
        return (self.total / self.count).float()
