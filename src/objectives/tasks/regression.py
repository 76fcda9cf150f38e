"""Regression: a network maps inputs to `pred`, compared with `target`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection, R2Score

from objectives.tasks.base import ObjectiveModule


class RegressionModule(ObjectiveModule):
    """Outputs `pred` (N, D) and `target` (N, D); judged by MSE, MAE and R²."""

    task_name = "regression"
    produces = ("pred", "target")
    primary_metric = "mse"

    def __init__(self, *args: Any, out_features: int = 1, **kwargs: Any) -> None:
        # the example outputs every term is tried on at start-up are as wide as the data's
        # targets, so a term reading one column (`columns: [1]`) is checked against them
        self.out_features = int(out_features)
        super().__init__(*args, **kwargs)

    def step_outputs(self, batch: Any) -> dict[str, Tensor]:
        inputs, target = batch
        return {"pred": self.model(inputs), "target": target}

    def predictions(self, batch: tuple[Tensor, ...], **settings: Any) -> dict[str, Tensor]:
        """`pred` in the units the network learned (predict.py undoes a target scaling)."""
        return {"pred": self.model(batch[0])}

    def example_outputs(self) -> dict[str, Tensor]:
        return {
            "pred": torch.zeros(2, self.out_features),
            "target": torch.zeros(2, self.out_features),
        }

    def configure_metrics(self, stage: str) -> MetricCollection:
        return MetricCollection(
            {"mse": MeanSquaredError(), "mae": MeanAbsoluteError(), "r2": R2Score()}
        )

    def metric_inputs(self, outputs: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        pred, target = outputs["pred"], outputs["target"]
        if pred.shape[-1] == 1:  # torchmetrics reads a single output as a 1-D vector
            pred, target = pred.squeeze(-1), target.squeeze(-1)
        return pred, target
