"""The indices one process reads in an epoch, in the order the in-memory batches slice them.

A DataLoader batching these indices gives exactly the batches `InMemoryBatches` gives
over the same rows with the same seed and epoch, on one process or several: the file-backed
and in-memory paths train on the same batches, and two processes' batches together are
the one-process batch (so their averaged gradient is the one-process gradient).

It is a `DistributedSampler` so that Lightning keeps it under DDP rather than replacing it
with its own. The epoch comes from `epoch()` (the fit loop's) when given, not from
`set_epoch`: Lightning creates a fit's first iterator before it calls `set_epoch`, and a
DataLoader with workers draws its first indices at once, so a resumed run would read its
first epoch in the order of an earlier one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch.utils.data.distributed import DistributedSampler

from objectives.data.batches import batch_bounds, epoch_order


class RankSampler(DistributedSampler):
    """Rank `rank`'s rows of `rows`, in batches of `batch_size` (see `batch_bounds`):
    training shares are global batches cut in `world_size` pieces, evaluation shares are
    contiguous, nothing padded or repeated."""

    def __init__(
        self,
        rows: int,
        batch_size: int,
        training: bool,
        shuffle: bool,
        drop_last: bool,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        epoch: Callable[[], int] | None = None,
    ) -> None:
        super().__init__(
            range(rows), num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed
        )
        self.rows, self.batch_size, self.training = rows, batch_size, training
        self.drop_last_rows = drop_last  # DistributedSampler's own `drop_last` means another thing
        self.current_epoch = epoch
        self.skip = 0  # batches the next pass leaves out: a resumed epoch's trained ones

    def bounds(self) -> list[tuple[int, int]]:
        return batch_bounds(self.rows, self.batch_size, self.training, self.drop_last_rows,
                            self.rank, self.num_replicas)  # fmt: skip

    def epoch_now(self) -> int:
        return self.epoch if self.current_epoch is None else self.current_epoch()

    def __iter__(self) -> Iterator[int]:
        epoch, skip, self.skip = self.epoch_now(), self.skip, 0
        order = (
            epoch_order(self.rows, self.seed, epoch) if self.shuffle else torch.arange(self.rows)
        )
        for start, end in self.bounds()[skip:]:
            yield from order[torch.arange(start, end) % self.rows].tolist()

    def __len__(self) -> int:
        return sum(end - start for start, end in self.bounds())
