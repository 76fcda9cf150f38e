"""What a fit steps on, said before it starts, and whether it stepped at all.

A run that makes no optimizer step must not look like a success: its "fitted" weights
are the initial ones and its test table judges an untrained model. Before the fit, the
data module refuses a batch size that leaves a process no training batch (it knows the
number of processes only once the Trainer is built); after it, a fit that made no
optimizer step, whatever the cause, ends the run with one line.
"""

from __future__ import annotations

import lightning as L

from objectives.errors import ConfigError, NoTrainingStep


def check_batches(trainer: L.Trainer, datamodule: L.LightningDataModule) -> str | None:
    """Refuse a batch size no process can step on; the batch an optimizer step reads, as a
    line for the start of the run (None for a data module without a batch size)."""
    check = getattr(datamodule, "check_training_batches", None)
    if check is not None:
        check(trainer.world_size)
    size = getattr(datamodule, "batch_size", None)
    if size is None:
        return None
    world, accumulate = trainer.world_size, trainer.accumulate_grad_batches
    if world == 1 and accumulate == 1:
        return f"Batch: {size} rows an optimizer step"
    return (
        f"Batch: {size} rows a device × {world} device{'s' if world > 1 else ''} × "
        f"{accumulate} accumulated = {size * world * accumulate} rows an optimizer step"
    )


def check_test_split(datamodule: L.LightningDataModule, test: bool) -> None:
    """Refuse, before training, `test=true` on data without a test split: the run would fail
    only once trained, when its test starts."""
    size = getattr(datamodule, "split_size", None)
    if not test or size is None:
        return
    if size("test") == 0:
        raise ConfigError(
            "the data has no test split (data.test_fraction=0), but test=true tests the model "
            "after training; set test=false, or data.test_fraction=0.15"
        )


def check_steps_made(trainer: L.Trainer, start_step: int, updates: int, skipped: int = 0) -> None:
    """Raise `NoTrainingStep` when the fit made no optimizer step after `start_step` (the
    resumed checkpoint's step, else 0). `updates`: training steps the task recorded and
    went on with; `skipped`: those the non-finite guard skipped (Lightning counts a skipped
    step in `global_step` too, though it changes no weight)."""
    if (trainer.global_step > start_step and updates) or trainer.interrupted:
        return
    if skipped:
        why = f"all {skipped} training steps had a non-finite objective (task.nonfinite=skip)"
    elif start_step and trainer.current_epoch >= (trainer.max_epochs or 0) > 0:
        why = (
            f"the resumed run had already reached trainer.max_epochs={trainer.max_epochs}; "
            "raise it to train on"
        )
    elif trainer.limit_train_batches == 0:
        why = "trainer.limit_train_batches=0 leaves no training batch"
    elif not trainer.num_training_batches:
        why = "there was no training batch; check data.batch_size against the training rows"
    else:
        why = "check trainer.max_steps, trainer.limit_train_batches and the data"
    raise NoTrainingStep(f"the fit made no optimizer step: {why}")
