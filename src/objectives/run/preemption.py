"""Where a run noted SIGTERM or SIGINT stops while training: at a safe point, with
`last.ckpt` saved and the same step on every process (run/signals.py says the rest).

The safe points are two:

- the end of a training batch that stepped the optimizer (not one inside a gradient
  accumulation), other than an epoch's last: the checkpoint is the one Lightning's
  `ModelCheckpoint(every_n_train_steps=...)` writes there, and a resume goes on with the
  next batch (mid-epoch: exact when the batches and the random states are restored too);
- the end of an epoch, after its validation and after the checkpoint callbacks (this one is
  a `Checkpoint`, which Lightning calls after the others): the checkpoint is the one
  `last.ckpt` is every epoch. A signal during validation, or during an epoch's last batch,
  stops here, so an epoch is never left half-validated.

A signal noted after the last epoch's end stops at the end of training, before the test.

At each point every process takes part in one reduction of "which signal, if any"
(`Strategy.reduce`, the maximum over processes): they all stop at the same step, which
`trainer.save_checkpoint` needs (it ends with a barrier). With one process nothing is
reduced and nothing is read from the device; with several it is one small all-reduce a
step, as Lightning's own SIGTERM check already makes one broadcast a step.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Checkpoint, ModelCheckpoint

from objectives.errors import Preempted
from objectives.run.signals import AFTER, STOPPING, TRAINING, WATCH, SignalWatch, signal_name

log = logging.getLogger(__name__)

LAST = "last"


def last_checkpoint_path(trainer: L.Trainer, run_dir: str | Path) -> Path:
    """The file a checkpoint callback keeps as the last one (`save_last`, or the project's
    `last_checkpoint`, filename `last`); else `<run>/checkpoints/last.ckpt`, the file
    `ckpt_path=last` resumes."""
    for callback in trainer.checkpoint_callbacks:
        if isinstance(callback, ModelCheckpoint) and callback.dirpath:
            name = callback.CHECKPOINT_NAME_LAST if callback.save_last else callback.filename
            if name == LAST or callback.save_last:
                return Path(callback.dirpath) / f"{name}{callback.FILE_EXTENSION}"
    return Path(run_dir) / "checkpoints" / f"{LAST}.ckpt"


def agreed_signal(trainer: L.Trainer, noted: int | None) -> int:
    """The signal every process stops for (0: none): with several processes, the largest
    one noted by any of them (SIGTERM over SIGINT)."""
    if trainer.world_size == 1:
        return noted or 0
    code = torch.tensor(noted or 0, device=trainer.strategy.root_device)
    return int(trainer.strategy.reduce(code, reduce_op="max").item())


class StopAtSignal(Checkpoint):
    """Saves `last.ckpt` and raises `Preempted` at the first safe point after a signal."""

    # code that lists every checkpoint callback's files reads these (tasks/nonfinite.py)
    best_model_path = ""

    def __init__(self, run_dir: str | Path, watch: SignalWatch = WATCH) -> None:
        self.run_dir = Path(run_dir)
        self.watch = watch
        self.last_model_path = ""
        self.started = time.perf_counter()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.started = time.perf_counter()
        if self.watch.installed:
            self.watch.phase = TRAINING
            self.watch.own_sigterm_again()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
        batch_idx: int,
    ) -> None:  # fmt: skip
        done = batch_idx + 1
        if done >= trainer.num_training_batches or done % trainer.accumulate_grad_batches:
            return  # an epoch's last batch stops at the epoch's end; no stop mid-accumulation
        self._stop_if_signalled(trainer, "at epoch {epoch}, step {step}")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._stop_if_signalled(trainer, "at the end of epoch {epoch}, step {step}")

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._stop_if_signalled(trainer, "after training ended (epoch {epoch}, step {step})")
        self._training_over(trainer)

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if self.watch.phase == TRAINING:
            self._training_over(trainer)

    def _training_over(self, trainer: L.Trainer) -> None:
        """From now on a signal stops the run at once; it says which checkpoint to test."""
        if self.watch.phase != TRAINING:
            return
        self.watch.phase = AFTER
        epoch, step = trainer.current_epoch, trainer.global_step
        files = [  # any Checkpoint callback: only ModelCheckpoint names its files
            getattr(c, "best_model_path", "") or getattr(c, "last_model_path", "")
            for c in trainer.checkpoint_callbacks
        ]
        kept = next((f for f in files if f and Path(f).is_file()), None)
        to_test = f"test it with: python eval.py ckpt_path={kept}" if kept else "no checkpoint"
        self.watch.after_training = lambda name: (
            f"stopped by {name} after training (epoch {epoch}, step {step}), before the run "
            f"ended; {to_test}"
        )

    def _stop_if_signalled(self, trainer: L.Trainer, where: str) -> None:
        if self.watch.phase != TRAINING:
            return
        signum = agreed_signal(trainer, self.watch.signum)
        if not signum:
            return
        self.watch.phase = STOPPING  # another signal is ignored from here on
        self.watch.signum = signum
        path = last_checkpoint_path(trainer, self.run_dir)
        trainer.save_checkpoint(path, weights_only=False)  # the whole state, to resume
        self.last_model_path = str(path)
        name = signal_name(signum)
        at = where.format(epoch=trainer.current_epoch, step=trainer.global_step)
        if trainer.is_global_zero:
            seconds = time.perf_counter() - self.started
            log.info("Stopped by %s %s after %.1f s of training; last.ckpt: %s",
                     name, at, seconds, path)  # fmt: skip
        if where.startswith("after training"):
            hint = f"test it with: python eval.py ckpt_path={path}"
        else:
            hint = f"resume with: python train.py ckpt_path={path}"
        raise Preempted(signum, f"stopped by {name} {at}; last.ckpt saved; {hint}")


def stop_at_signals(trainer: L.Trainer, run_dir: str | Path) -> StopAtSignal:
    """Give `trainer` the callback that stops it at a safe point after a signal (last, after
    the checkpoint callbacks), and tell the watch which trainer it is."""
    callback = StopAtSignal(run_dir)
    trainer.callbacks.append(callback)
    WATCH.trainer = trainer
    return callback
