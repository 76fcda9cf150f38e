"""The TensorBoard writers among a run's loggers: figures, histograms, images and text go
only there (the CSV logger has no place for them)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lightning.pytorch.loggers import Logger, TensorBoardLogger


def tensorboard_writers(loggers: Iterable[Logger]) -> list[Any]:
    """Each TensorBoardLogger's SummaryWriter, in logger order."""
    return [lg.experiment for lg in loggers if isinstance(lg, TensorBoardLogger)]
