"""Epoch means of the objective and its terms, one vector per stage.

One tensor holds Σ batch_size·[objective, terms..., raws...] for the epoch, so a step
costs one in-place add (a torchmetrics `Metric`, or `self.log` a term, costs several
times more a step; docs/benchmarks.md). At the epoch's
end the sums and the row count are reduced across processes in one all-reduce, which
weights every batch by its size when batches differ.

The sums are deliberately not a registered buffer: DistributedDataParallel copies rank
0's buffers over every other rank's before each forward, which would wipe each rank's
own sums.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


class TermMeans:
    """Batch-size-weighted running mean of a fixed-length vector."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.sums: Tensor | None = None  # allocated on the device of the first values
        self.rows = 0  # a Python int: counting rows never touches the device
        self.left_out: Tensor | None = None  # rows flagged out on the device (skipped steps)
        self.weights: Tensor | None = None  # the sum of weights given as tensors (tokens)

    @property
    def updated(self) -> bool:
        return self.rows > 0

    def update(
        self, values: Tensor, batch_size: int | Tensor, left_out: Tensor | None = None
    ) -> None:
        """Add one batch, weighted by `batch_size` (its rows; or a 0-d tensor on the device,
        e.g. its tokens); `left_out`, a 0-d bool tensor, drops it on the device (no read)."""
        if self.sums is None or self.sums.device != values.device:
            self.sums = torch.zeros(self.size, device=values.device)
        values = values.detach()
        if isinstance(batch_size, Tensor):
            weight = batch_size.detach().to(values.dtype)
            if left_out is not None:
                weight = torch.where(left_out, 0.0, weight)
                values = torch.where(left_out, 0.0, values)
            self.sums.add_(values * weight)
            self.weights = weight if self.weights is None else self.weights + weight
            self.rows += 1  # batches: only says that some came
            return
        if left_out is not None:
            values = torch.where(left_out, 0.0, values)  # NaN·0 would still be NaN
            dropped = left_out * batch_size
            self.left_out = dropped if self.left_out is None else self.left_out + dropped
        self.sums.add_(values, alpha=batch_size)
        self.rows += batch_size

    def compute(
        self,
        reduce_sum: Callable[[Tensor], Tensor] = lambda t: t,
        device: torch.device | None = None,
    ) -> Tensor | None:
        """The means, after `reduce_sum` adds up every process's sums and rows; None when no
        process saw a row. Every process must call it (the reduction is collective); one
        that saw no rows contributes zeros on `device`."""
        sums = self.sums if self.sums is not None else torch.zeros(self.size, device=device)
        rows = sums.new_tensor([self.rows])
        if self.weights is not None:
            rows = self.weights.reshape(1).to(rows)
        elif self.left_out is not None:
            rows = rows - self.left_out.to(rows)
        packed = reduce_sum(torch.cat([sums, rows]))
        if packed[-1].item() == 0:  # one sync an epoch, not a step
            return None
        return packed[:-1] / packed[-1]

    def reset(self) -> None:
        if self.sums is not None:
            self.sums.zero_()
        self.rows = 0
        self.left_out = None
        self.weights = None
