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


class PassPosition:
    """Where a pass over an epoch stands, saved in checkpoints so that a run stopped
    mid-epoch resumes at the next batch: the pass's epoch and the batches handed out
    (Lightning fetches one batch at a time from an iterable with a length, so that is the
    batches trained on, the current one included). Lightning saves `state_dict()` of a
    training loader that has one and loads it into the resumed run's loader."""

    def __init__(self) -> None:
        self._epoch_of_pass: int | None = None
        self._handed_out = 0
        self._resume_at: tuple[int, int] | None = None

    def state_dict(self) -> dict[str, int]:
        """An epoch of -1 before the first pass."""
        epoch = -1 if self._epoch_of_pass is None else self._epoch_of_pass
        return {"epoch": epoch, "batches": self._handed_out}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        """The next pass over epoch `state_dict["epoch"]` skips its first
        `state_dict["batches"]` batches; a pass over another epoch starts at its first."""
        self._resume_at = (int(state_dict["epoch"]), int(state_dict["batches"]))

    def start_pass(self, epoch: int) -> int:
        """Begin a pass over `epoch`: the batches it leaves out (those a resumed run
        trained on before it stopped; none otherwise)."""
        skip = 0
        if self._resume_at is not None:
            resumed_epoch, batches = self._resume_at
            self._resume_at = None
            skip = batches if resumed_epoch == epoch else 0
        self._epoch_of_pass, self._handed_out = epoch, skip
        return skip


class InMemoryBatches(PassPosition):
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
        PassPosition.__init__(self)

    def _batch_bounds(self) -> list[tuple[int, int]]:
        return batch_bounds(self.num_rows, self.batch_size, self.training, self.drop_last,
                            self.rank, self.world_size)  # fmt: skip

    def __len__(self) -> int:
        return len(self._batch_bounds())

    def epoch_tensors(self, epoch: int) -> tuple[Tensor, ...]:
        """The columns epoch `epoch` slices: the data's own (a subclass may add columns
        drawn for the epoch, such as sampled negatives)."""
        return self.tensors

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        # a generator: this runs at the first batch, once a resumed trainer knows its epoch
        epoch = self.epoch()
        skip = self.start_pass(epoch)
        tensors = self.epoch_tensors(epoch)
        if self.shuffle:
            order = epoch_order(self.num_rows, self.seed, epoch).to(tensors[0].device)
            tensors = tuple(t.index_select(0, order) for t in tensors)
        rows = self.num_rows
        for start, end in self._batch_bounds()[skip:]:
            self._handed_out += 1
            if end <= rows:
                yield tuple(t[start:end] for t in tensors)
            else:  # padding: the share runs past the last row and wraps round to the first
                wrapped = torch.arange(start, end, device=tensors[0].device) % rows
                yield tuple(t.index_select(0, wrapped) for t in tensors)


def epoch_order(rows: int, seed: int, epoch: int) -> Tensor:
    """The shuffled order of an epoch's rows: the same in every process of a run, and in
    a resumed run as in an uninterrupted one (the file-backed path reads rows in it too)."""
    generator = torch.Generator().manual_seed(seed + 1_000_003 * epoch)
    return torch.randperm(rows, generator=generator)


def batch_bounds(
    rows: int, size: int, training: bool, drop_last: bool, rank: int, world: int
) -> list[tuple[int, int]]:
    """One rank's batches as [start, end) ranges of positions in the epoch's order; an end
    past the last row wraps round to the first rows (padding). See `InMemoryBatches`."""
    if not training:
        first, end = round(rank * rows / world), round((rank + 1) * rows / world)
        return [(s, min(s + size, end)) for s in range(first, end, size)]
    step_rows = world * size
    full = rows // step_rows
    bounds = [(k * step_rows + rank * size, k * step_rows + (rank + 1) * size)
              for k in range(full)]  # fmt: skip
    left = rows - full * step_rows
    if left and not drop_last:
        share = -(-left // world)  # every rank the same size: padded when uneven
        start = full * step_rows + rank * share
        bounds.append((start, start + share))
    return bounds
