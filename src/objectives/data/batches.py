"""Batches sliced from tensors held in memory: no per-sample fetch, no collate.

A `DataLoader` over a `TensorDataset` fetches and collates sample by sample, a large
share of a small model's step; slicing whole batches does not. The
iterable shuffles with a permutation seeded by (seed, epoch), so every process of
a multi-device run agrees on it, and each takes its own share.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import Tensor


class InMemoryBatches:
    """Iterate `(x, y, ...)` batches of `batch_size` rows from equally long tensors.

    `epoch` is a callable returning the current epoch (the trainer's), so the order
    of a resumed run matches an uninterrupted one. `batch_size` is per process, as in
    Lightning: one optimizer step of `world_size` processes reads `world_size ×
    batch_size` rows.

    - training: the epoch's rows form global batches of `world_size × batch_size` rows,
      rank r taking the r-th `batch_size` of each, so the ranks' batches together are
      exactly the batches one process reads with `world_size` times the batch size, and
      every rank steps the same number of times. The rows left over (fewer than a global
      batch) are dropped (`drop_last`, the default) or make one more, smaller step: one
      process reads them all; several split them into equal contiguous shares, padded
      with the epoch's first rows where they do not divide evenly (as torch's
      `DistributedSampler` pads), so every rank still steps the same number of times.
    - evaluation: rank r takes the r-th contiguous share of the rows (shares differ by
      at most one row), nothing padded or repeated, so the batch-size-weighted epoch
      means reduced across ranks equal the single-process values exactly.
    """

    def __init__(
        self,
        tensors: tuple[Tensor, ...],
        batch_size: int,
        shuffle: bool = False,
        training: bool = False,
        drop_last: bool = True,
        seed: int = 0,
        epoch: Callable[[], int] = lambda: 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        lengths = {len(t) for t in tensors}
        if len(lengths) != 1:
            raise ValueError(f"tensors must have the same length, got {sorted(lengths)}")
        self.tensors = tensors
        self.num_rows = lengths.pop()
        self.batch_size = int(batch_size)
        self.shuffle, self.training, self.drop_last = shuffle, training, drop_last
        self.seed, self.epoch, self.rank, self.world_size = seed, epoch, rank, world_size

    def _batch_bounds(self) -> list[tuple[int, int]]:
        """This rank's batches as [start, end) row ranges of the epoch's order; an end past
        the last row wraps round to the first rows (padding)."""
        rows, size, world, rank = self.num_rows, self.batch_size, self.world_size, self.rank
        if not self.training:
            first, end = round(rank * rows / world), round((rank + 1) * rows / world)
            return [(s, min(s + size, end)) for s in range(first, end, size)]
        step_rows = world * size
        full = rows // step_rows
        bounds = [(k * step_rows + rank * size, k * step_rows + (rank + 1) * size)
                  for k in range(full)]  # fmt: skip
        left = rows - full * step_rows
        if left and not self.drop_last:
            share = -(-left // world)  # every rank the same size: padded when uneven
            start = full * step_rows + rank * share
            bounds.append((start, start + share))
        return bounds

    def __len__(self) -> int:
        return len(self._batch_bounds())

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        tensors = self.tensors
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + 1_000_003 * self.epoch())
            order = torch.randperm(self.num_rows, generator=generator).to(tensors[0].device)
            tensors = tuple(t.index_select(0, order) for t in tensors)
        rows = self.num_rows
        for start, end in self._batch_bounds():
            if end <= rows:
                yield tuple(t[start:end] for t in tensors)
            else:  # padding: the share runs past the last row and wraps round to the first
                wrapped = torch.arange(start, end, device=tensors[0].device) % rows
                yield tuple(t.index_select(0, wrapped) for t in tensors)
