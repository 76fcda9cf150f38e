"""Training batches that carry the real-token count of their accumulation window.

Lightning accumulates `A` micro-batches into one optimiser step (batch indices 0..A−1,
A..2A−1, ..., the last window shorter when the epoch ends first). A token-mean loss must
divide by the real tokens of the whole window, which are known only once every micro-batch
of it is read; so this iterable reads each window ahead (in-memory batches are slices:
reading ahead costs nothing) and appends its count, a 0-d tensor on the batches' device,
to every batch of the window. tasks/token_normalisation.py adds the processes' counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sized

import torch
from torch import Tensor

from objectives.losses.sequence import real_tokens


class TokenWindows:
    """`(*batch, window_tokens)` for every batch of `batches` (whose third tensor is the
    padded targets); `accumulate`: the trainer's `accumulate_grad_batches`; `limit`: the
    batches the epoch trains on (the trainer's `num_training_batches`)."""

    def __init__(
        self,
        batches: Iterable[tuple[Tensor, ...]],
        accumulate: int,
        limit: Callable[[], float] = lambda: float("inf"),
    ) -> None:
        self.batches = batches
        self.accumulate = int(accumulate)
        self.limit = limit

    def __len__(self) -> int:
        assert isinstance(self.batches, Sized)
        return len(self.batches)

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        remaining = min(len(self), self.limit())
        source = iter(self.batches)
        while remaining > 0:
            size = min(self.accumulate, remaining)
            window = [batch for _, batch in zip(range(size), source, strict=False)]
            if not window:
                return
            total = torch.stack([real_tokens(batch[2]).sum() for batch in window]).sum()
            for batch in window:
                yield (*batch, total)
            remaining -= len(window)
