"""Precision@1 of embeddings: does each one's nearest other embedding share its label?

The split's embeddings are both the queries and the references, the query itself left out
(pytorch-metric-learning's AccuracyCalculator with the query set as its own reference set):
P@1 = (1/N) Σ_i [y_{nn(i)} = y_i], nn(i) = argmax_{j≠i} cos(e_i, e_j). A tie in similarity
goes to the lower index. The embeddings are collected over the epoch (under DDP from every
process) and judged once, at `compute`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

CHUNK = 4096  # queries compared at once


def precision_at_one(embeddings: Tensor, labels: Tensor) -> Tensor:
    """Leave-one-out precision@1 by cosine similarity, a 0-d float tensor (NaN for fewer
    than 2 embeddings)."""
    if len(embeddings) < 2:
        return torch.tensor(float("nan"), device=embeddings.device)
    z = F.normalize(embeddings.float(), dim=1)
    hits = torch.zeros((), device=z.device)
    for start in range(0, len(z), CHUNK):
        similarity = z[start : start + CHUNK] @ z.T
        rows = torch.arange(len(similarity), device=z.device)
        similarity[rows, rows + start] = -torch.inf  # not its own neighbour
        nearest = similarity.argmax(dim=1)
        hits = hits + (labels[nearest] == labels[start : start + CHUNK]).sum()
    return hits / len(z)


class PrecisionAtOne(Metric):
    """Leave-one-out precision@1 over all of an epoch's embeddings."""

    full_state_update = False
    higher_is_better = True

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("embeddings", default=[], dist_reduce_fx="cat")
        self.add_state("labels", default=[], dist_reduce_fx="cat")

    def update(self, embeddings: Tensor, labels: Tensor) -> None:
        self.embeddings.append(embeddings.detach())
        self.labels.append(labels.detach())

    def compute(self) -> Tensor:
        return precision_at_one(dim_zero_cat(self.embeddings), dim_zero_cat(self.labels))
