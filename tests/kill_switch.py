"""A callback that kills its own process at a chosen moment, for resume tests."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Checkpoint


class KillSwitch(L.Callback):
    """SIGKILL its own process once, at Lightning hook `hook` of training epoch `epoch`
    (and, for batch hooks, batch `batch`). `once_file` is created just before: the resumed
    run, which gets this callback back with the run's saved overrides, then goes on.

    As a plain callback, its `on_train_epoch_end` runs before the module's hook and before
    the checkpoints; `KillAfterCheckpoints` kills after them."""

    def __init__(self, hook: str, epoch: int, once_file: str, batch: int = 0) -> None:
        self.hook, self.epoch, self.batch, self.once_file = hook, epoch, batch, Path(once_file)

    def _maybe_kill(self, hook: str, trainer: L.Trainer, batch: int = 0) -> None:
        chosen = (self.hook, self.epoch, self.batch)
        if chosen == (hook, trainer.current_epoch, batch) and not self.once_file.exists():
            self.once_file.touch()
            os.kill(os.getpid(), signal.SIGKILL)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._maybe_kill("on_train_batch_end", trainer, batch_idx)

    def on_validation_end(self, trainer, pl_module) -> None:
        self._maybe_kill("on_validation_end", trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._maybe_kill("on_train_epoch_end", trainer)


class KillAfterCheckpoints(KillSwitch, Checkpoint):
    """KillSwitch called where Lightning calls checkpoint callbacks: after the module's own
    hook, after the ModelCheckpoints before it (Lightning puts Checkpoints last, in order).
    At `on_train_epoch_end` that is just after last.ckpt of a validated epoch is written
    (saved there, not after validation, when validation runs once an epoch) and before
    Lightning writes the epoch's train means to the loggers."""
