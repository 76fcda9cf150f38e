"""Tells the command that training has started: from then on the run folder is the run's
own and is kept whatever ends the run (run/run_folder.py)."""

from __future__ import annotations

import lightning as L

from objectives.run.run_folder import note_training_started


class TrainingStarted(L.Callback):
    """Marks the start of training; it adds nothing to a step (only `on_train_start`)."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        note_training_started()
