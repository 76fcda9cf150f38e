"""Metric learning: an encoder maps each labelled input to an embedding in which inputs of
one label lie close together, judged by retrieval (precision@1), not by a classifier.

The network is any `model=` trunk ending in `embedding_dim` outputs; the objective reads
`embeddings` (N, embedding_dim) and `labels` (N,). Losses that fit: `arcface`, `cosface`
(softmax over learned class directions, with a margin; the directions are the loss's own
parameters, sized here from `embedding_dim` and the data's classes) and `multi_similarity`
(in-batch pairs). With `augment=` the training inputs are augmented (one view each).

Multi-device: in training the embeddings and labels are gathered from every process with
their gradients (tasks/global_batch.py): multi-similarity's pairs span the global batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics import MetricCollection

from objectives.checks import positive_int
from objectives.metrics.retrieval_precision import PrecisionAtOne
from objectives.objective import Objective
from objectives.tasks.base import ObjectiveModule
from objectives.tasks.global_batch import GlobalBatch


class MetricLearningModule(GlobalBatch, ObjectiveModule):
    """Outputs `embeddings` and `labels`; judged by leave-one-out precision@1 on the
    validation and test splits."""

    task_name = "metric_learning"
    produces = ("embeddings", "labels")
    primary_metric = "precision_at_1"

    def __init__(
        self,
        model: nn.Module,
        objective: Objective,
        embedding_dim: int = 64,
        num_classes: int | None = None,
        augment: nn.Module | None = None,
        **kwargs: Any,
    ) -> None:
        self.embedding_dim = positive_int(embedding_dim, "task.embedding_dim")
        self.num_classes = num_classes
        sizes = {"embedding_size": self.embedding_dim}
        if num_classes is not None:
            sizes["num_classes"] = positive_int(num_classes, "task.num_classes")
        objective.fit_sizes(sizes)  # the terms' own parameters (class directions) exist first
        super().__init__(model, objective, **kwargs)
        self.augment = augment

    @classmethod
    def network_dims(cls, dims: Mapping[str, int], task_cfg: Mapping[str, Any]) -> dict[str, int]:
        """The encoder ends in the embedding, not in one output a class."""
        size = int(task_cfg.get("embedding_dim", 64))
        return {**dims, "out_features": size, "num_classes": size}

    def step_outputs(self, batch: Any) -> dict[str, Tensor]:
        inputs, labels = batch[0], batch[1]
        if self.training and self.augment is not None:
            inputs = self.augment(inputs)
        embeddings, labels = self.across_processes(self.model(inputs), labels)
        return {"embeddings": embeddings, "labels": labels}

    def configure_metrics(self, stage: str) -> MetricCollection:
        return MetricCollection({"precision_at_1": PrecisionAtOne()})

    def metric_inputs(self, outputs: Mapping[str, Tensor]) -> tuple[Tensor, ...]:
        return outputs["embeddings"], outputs["labels"]

    def example_outputs(self) -> dict[str, Tensor]:
        z = torch.randn(4, self.embedding_dim, generator=torch.Generator().manual_seed(0))
        return {"embeddings": z, "labels": torch.tensor([0, 1, 0, 1])}

    def predictions(self, batch: tuple[Tensor, ...], **settings: Any) -> dict[str, Tensor]:
        return {"embedding": self.model(batch[0])}
