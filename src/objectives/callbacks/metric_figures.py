"""Tensor-valued metrics (a confusion matrix) drawn for TensorBoard's Images tab.

The task's recorder computes every metric at the end of a validation or test epoch and
keeps the ones that are not scalars (`recorder.figures`); this callback draws each with
the metric's own `plot` once the epoch's values are logged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from objectives.tracking import publish

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from torchmetrics import Metric


class ArrayTensor(torch.Tensor):
    """A tensor whose `__array__` takes numpy 2's `copy` keyword. torch's does not, so numpy
    warns (a DeprecationWarning, an error under `PYTHONWARNINGS=error`) each time matplotlib
    turns a tensor into an array, as torchmetrics' `plot` has `imshow` do with the confusion
    matrix. The subclass survives the `.cpu()` and indexing `plot` applies."""

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        array = self.as_subclass(torch.Tensor).detach().cpu().numpy()
        if dtype is not None:
            array = array.astype(dtype, copy=False)
        return array.copy() if copy else array


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
        if not publish.takes_pictures(trainer.loggers):
            return
        import matplotlib.pyplot as plt  # deferred: only runs that draw need matplotlib

        for tag, (metric, value) in figures.items():
            figure = figure_of(metric, value)
            publish.figure(trainer.loggers, tag, figure, trainer.global_step)
            plt.close(figure)


def figure_of(metric: Metric, value: torch.Tensor) -> Figure:
    """The metric's own drawing of `value`, handed over as an `ArrayTensor` so that no
    tensor reaches matplotlib through numpy's deprecated path."""
    figure, _ = metric.plot(value.detach().cpu().as_subclass(ArrayTensor))
    return figure
