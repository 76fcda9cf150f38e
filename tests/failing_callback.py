"""A callback whose hook makes torch fail part-way through training (a matrix product of
sizes that do not fit), as a user's model or data can; for tests of the one-line report."""

from __future__ import annotations

import lightning as L
import torch


class TorchFailsAtStep(L.Callback):
    def __init__(self, step: int = 1) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            torch.zeros(2, 3) @ torch.zeros(2, 3)
