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
    of a resumed run matches an uninterrupted one. With `world_size > 1`:

    - training (`drop_last`): rank r takes batches r, r + world_size, ... and the last
      uneven round is dropped, so every rank steps the same number of times and the
      ranks' batches together are exactly the batches one process would see with
      `world_size` times the batch size;
    - evaluation: rank r takes the r-th contiguous share of the rows (shares differ by
      at most one row), nothing padded or repeated, so the batch-size-weighted epoch
      means reduced across ranks equal the single-process values exactly.
    """

    def __init__(
        self,
        tensors: tuple[Tensor, ...],
        batch_size: int,
        shuffle: bool = False,
        drop_last: bool = False,
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
        self.shuffle, self.drop_last, self.seed = shuffle, drop_last, seed
        self.epoch, self.rank, self.world_size = epoch, rank, world_size

    def _row_range(self) -> tuple[int, int]:
        """The rows this rank reads: all of them, or its contiguous share when evaluating."""
        if self.drop_last or self.world_size == 1:
            return 0, self.num_rows
        share = self.num_rows / self.world_size
        return round(self.rank * share), round((self.rank + 1) * share)

    def _batch_bounds(self) -> list[tuple[int, int]]:
        first, end = self._row_range()
        starts = list(range(first, end, self.batch_size))
        if self.drop_last and (end - first) % self.batch_size:
            starts = starts[:-1]
        bounds = [(s, min(s + self.batch_size, end)) for s in starts]
        if self.drop_last and self.world_size > 1:
            rounds = len(bounds) // self.world_size
            bounds = bounds[self.rank : rounds * self.world_size : self.world_size]
        return bounds

    def __len__(self) -> int:
        return len(self._batch_bounds())

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        tensors = self.tensors
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + 1_000_003 * self.epoch())
            order = torch.randperm(self.num_rows, generator=generator).to(tensors[0].device)
            tensors = tuple(t.index_select(0, order) for t in tensors)
        for start, end in self._batch_bounds():
            yield tuple(t[start:end] for t in tensors)
