"""The shared end of callbacks that log per-step values through `DeferredStepValues`."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

from objectives.tracking.step_values import DeferredStepValues


class DeferredValuesCallback(Callback):
    """Writes the pending value at the end of training and at every checkpoint, so a run
    killed after a checkpoint and resumed from it has nothing missing up to that step."""

    def __init__(self) -> None:
        self._values: DeferredStepValues | None = None

    def _flush(self, trainer: L.Trainer) -> None:
        if self._values is not None:
            self._values.flush(trainer.loggers)

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._flush(trainer)

    def on_save_checkpoint(
        self, trainer: L.Trainer, module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        self._flush(trainer)
