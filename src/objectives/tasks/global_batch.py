"""The global batch for losses that compare each row with the batch's other rows.

NT-Xent, multi-similarity and CLIP's InfoNCE contrast a row against the others: on several
processes each would see only its own rows. In training, `across_processes` gathers the
outputs from every process with their gradients (`all_gather(sync_grads=True)`), so every
process computes the same global loss; the gather's backward sums each row's gradient over
the processes (world size × the gradient) and DDP's average divides it back, so the
parameter gradient is exactly the one-process gradient on the global batch
(tests/test_ddp_equivalence.py). Validation and test use each process's own batches.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from objectives.tasks.signatures import stored_signature


class GlobalBatch:
    """Mix-in before ObjectiveModule: `step_outputs` passes its row-wise outputs through
    `across_processes`."""

    _gather = False

    @stored_signature
    def training_step(self, batch: Any, batch_idx: int) -> Tensor | None:
        self._gather = self.trainer.world_size > 1  # every process runs every training step
        try:
            return super().training_step(batch, batch_idx)
        finally:
            self._gather = False

    def across_processes(self, *outputs: Tensor) -> tuple[Tensor, ...]:
        """`outputs` of every process, concatenated, in a multi-process training step; as they
        are otherwise."""
        if not self._gather:
            return outputs
        return tuple(self.all_gather(t, sync_grads=True).flatten(0, 1) for t in outputs)
