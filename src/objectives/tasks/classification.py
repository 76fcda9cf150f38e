"""Classification: a network maps inputs to class `logits`, compared with the `target` class."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassConfusionMatrix

from objectives.errors import ConfigError
from objectives.metrics.confusion import ConfusionAccuracy, ConfusionF1
from objectives.objective import Objective
from objectives.tasks.base import ObjectiveModule


class ClassificationModule(ObjectiveModule):
    """Outputs `logits` (N, C) and `target` (N,) class ids; judged by accuracy and macro F1,
    with a confusion matrix drawn at the end of each validation and test epoch (not for
    the training split).

    For two classes it also offers the one-logit view that binary losses read:
    `binary_logit` = logit₁ − logit₀ (softmax over two classes is the sigmoid of this
    difference) and `binary_target` = the label as a float.

    `augment` (augment=cifar, any module mapping a batch of inputs to one of the same
    shape) changes the inputs of training batches, without gradients, before the network
    sees them; validation and test batches, and what callbacks read through
    `step_outputs`, are left as they are. Its random numbers come from the global
    generators or from its own, both saved in checkpoints (tasks/random_states.py), so a
    resumed run draws the augmentations the uninterrupted one would have.
    """

    task_name = "classification"
    produces = ("logits", "target", "binary_logit", "binary_target")
    primary_metric = "acc"
    BINARY_OUTPUTS = ("binary_logit", "binary_target")

    def __init__(
        self,
        model: nn.Module,
        objective: Objective,
        num_classes: int,
        augment: nn.Module | None = None,
        **kwargs: Any,
    ) -> None:
        if augment is not None and not isinstance(augment, nn.Module):
            raise ConfigError(
                f"task.augment must be augmentations (a module, e.g. augment=cifar) or null, "
                f"got {type(augment).__name__}"
            )
        self.num_classes = int(num_classes)
        wants_binary = [k for k in self.BINARY_OUTPUTS if k in objective.reads]
        if wants_binary and self.num_classes != 2:
            term = next(t for t in objective.terms if set(t.reads) & set(wants_binary))
            raise ConfigError(
                f"{term.kind} '{term.name}' reads {wants_binary[0]}, which task 'classification' "
                f"produces only for 2 classes, but the data has {self.num_classes}; pick two, "
                f"e.g. data=digits data.source.classes=[3,8], or use loss=cross_entropy"
            )
        self._binary = bool(wants_binary)
        super().__init__(model, objective, **kwargs)
        self.augment = augment

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        if self.augment is not None:
            inputs, *rest = batch
            with torch.no_grad():
                batch = (self.augment(inputs), *rest)
        return super().training_step(batch, batch_idx)

    def step_outputs(self, batch: Any) -> dict[str, Tensor]:
        inputs, target = batch
        logits = self.model(inputs)
        outputs = {"logits": logits, "target": target}
        if self._binary:
            outputs["binary_logit"] = logits[:, 1] - logits[:, 0]
            outputs["binary_target"] = target.to(logits.dtype)
        return outputs

    def predictions(self, batch: tuple[Tensor, ...], **settings: Any) -> dict[str, Tensor]:
        """Every class's probability (softmax of the logits), (N, C)."""
        return {"probs": self.model(batch[0]).float().softmax(-1)}

    def example_outputs(self) -> dict[str, Tensor]:
        logits = torch.zeros(2, self.num_classes)
        target = torch.zeros(2, dtype=torch.int64)
        outputs = {"logits": logits, "target": target}
        if self._binary:
            outputs.update(binary_logit=torch.zeros(2), binary_target=torch.zeros(2))
        return outputs

    def configure_metrics(self, stage: str) -> MetricCollection:
        # one confusion matrix a step serves all three (metrics/confusion.py)
        c = self.num_classes
        metrics = {"acc": ConfusionAccuracy(num_classes=c), "f1_macro": ConfusionF1(num_classes=c)}
        if stage != "train":  # a drawing per training epoch would cost more than it shows
            metrics["confusion_matrix"] = MulticlassConfusionMatrix(
                num_classes=c, validate_args=False
            )
        return MetricCollection(metrics)

    def metric_inputs(self, outputs: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        return outputs["logits"], outputs["target"]
