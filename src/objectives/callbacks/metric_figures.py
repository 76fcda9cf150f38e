"""Tensor-valued metrics (a confusion matrix) drawn for TensorBoard's Images tab.

The task's recorder computes every metric at the end of a validation or test epoch and
keeps the ones that are not scalars (`recorder.figures`); this callback draws each with
the metric's own `plot` once the epoch's values are logged.
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import Callback

from objectives.tracking.writers import tensorboard_writers


class MetricFigures(Callback):
    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._draw(trainer, module, "val")

    def on_test_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._draw(trainer, module, "test")

    def _draw(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        recorder = getattr(module, "recorder", None)
        figures = recorder.figures.pop(stage, {}) if recorder is not None else {}
        if trainer.sanity_checking or not trainer.is_global_zero or not figures:
            return
        writers = tensorboard_writers(trainer.loggers)
        if not writers:
            return
        import matplotlib.pyplot as plt  # deferred: only runs that draw need matplotlib

        for tag, (metric, value) in figures.items():
            figure, _ = metric.plot(value.cpu())
            for writer in writers:
                writer.add_figure(tag, figure, global_step=trainer.global_step, close=False)
            plt.close(figure)
