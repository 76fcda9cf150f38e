"""A callback that sends a signal to its own process at a chosen moment, for signal tests."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import lightning as L

from objectives.run import signals


class SignalAt(L.Callback):
    """Send `signal` (a name: SIGTERM, SIGINT) to its own process once, at Lightning hook
    `hook` of training epoch `epoch` (and, for batch hooks, batch `batch`), on process
    `rank` only. `once_file` is created just before: the resumed run, which gets this
    callback back with the run's saved overrides, then goes on. `again`: a second signal
    sent while the run writes the checkpoint it stops with."""

    def __init__(self, signal: str, hook: str, once_file: str, epoch: int = 0, batch: int = 0,
                 rank: int = 0, again: str | None = None) -> None:  # fmt: skip
        self.signal, self.hook, self.once_file = signal, hook, Path(once_file)
        self.epoch, self.batch, self.rank, self.again = epoch, batch, rank, again

    def _maybe_send(self, hook: str, trainer: L.Trainer, batch: int = 0) -> None:
        chosen = (self.hook, self.epoch, self.batch, self.rank)
        here = (hook, trainer.current_epoch, batch, trainer.global_rank)
        if chosen == here and not trainer.sanity_checking and not self.once_file.exists():
            self.once_file.touch()
            os.kill(os.getpid(), getattr(signal, self.signal))

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._maybe_send("setup", trainer)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._maybe_send("on_train_batch_end", trainer, batch_idx)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx,
                                dataloader_idx: int = 0) -> None:  # fmt: skip
        self._maybe_send("on_validation_batch_end", trainer, batch_idx)

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._maybe_send("on_test_start", trainer)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        if self.again and signals.WATCH.phase == signals.STOPPING:
            os.kill(os.getpid(), getattr(signal, self.again))
