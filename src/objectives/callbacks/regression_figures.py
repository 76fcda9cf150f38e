"""The seed's regression pictures at validation time: prediction vs truth, and the errors.

Every `every_n_epochs` validation epochs (not the sanity check) this callback re-runs the
network on the validation batches (the step path stays untouched), then writes
`val/pred_vs_target` (a scatter with the identity line) as a figure and `val/error`
(ŷ − y) as a TensorBoard histogram. Tasks whose outputs have no `pred` are skipped.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor

from objectives.callbacks.interval import check_interval
from objectives.tracking import publish


class RegressionFigures(Callback):
    def __init__(self, every_n_epochs: int = 10) -> None:
        self.every_n_epochs = check_interval(
            every_n_epochs, "callbacks.regression_figures.every_n_epochs"
        )
        self._pred: list[Tensor] = []
        self._target: list[Tensor] = []

    def _drawing(self, trainer: L.Trainer) -> bool:
        return (
            bool(self.every_n_epochs)
            and not trainer.sanity_checking
            and trainer.is_global_zero
            and trainer.current_epoch % self.every_n_epochs == 0
            and publish.takes_pictures(trainer.loggers)
        )

    def on_validation_batch_end(
        self, trainer: L.Trainer, module: L.LightningModule, outputs: Any, batch: Any,
        batch_idx: int, dataloader_idx: int = 0,
    ) -> None:  # fmt: skip
        if not self._drawing(trainer):
            return
        step = module.step_outputs(batch)
        if "pred" in step:
            self._pred.append(step["pred"].detach().flatten().cpu())
            self._target.append(step["target"].detach().flatten().cpu())

    def on_validation_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not self._pred:
            return
        pred, target = torch.cat(self._pred), torch.cat(self._target)
        self._pred, self._target = [], []
        import matplotlib.pyplot as plt  # imported here: only runs that draw need it

        figure, axes = plt.subplots(figsize=(5, 5))
        axes.scatter(target.numpy(), pred.numpy(), s=10, alpha=0.6)
        low, high = float(min(target.min(), pred.min())), float(max(target.max(), pred.max()))
        axes.plot([low, high], [low, high], "r--", label="perfect prediction")
        axes.set(xlabel="target y", ylabel="prediction ŷ", title=f"epoch {trainer.current_epoch}")
        axes.legend()
        axes.grid(alpha=0.3)
        publish.figure(trainer.loggers, "val/pred_vs_target", figure, trainer.global_step)
        publish.histogram(trainer.loggers, "val/error", pred - target, trainer.global_step, bins=64)
        plt.close(figure)
