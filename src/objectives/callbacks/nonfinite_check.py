"""The non-finite guard's epoch-level check, before any other callback's epoch-end work.

The guard (tasks/nonfinite.py) reads the training steps' values only at its check points,
so between a bad step and the next check the weights may already be NaN. Lightning runs
callbacks' epoch-end hooks before the module's, and an observer drawing NaN weights (a
histogram, a figure) would fail first, with a message about bins instead of the term and
step that went bad. This callback, placed first by run/assemble.py, checks before them.
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import Callback


class NonFiniteCheck(Callback):
    """Runs the task's non-finite check at the end of each training epoch and before
    validation (for modules with a `recorder`; others are left alone)."""

    @staticmethod
    def _check(module: L.LightningModule) -> None:
        recorder = getattr(module, "recorder", None)
        if recorder is not None:
            recorder.check(module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._check(pl_module)

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == "fit":  # during a fit: the steps since the last check first
            self._check(pl_module)
