"""Learning to rank: a network scores every item of a query's list on its own features;
the terms compare the scores with the items' graded relevance (losses/ranking.py).

Batches are `(features, relevance, mask, query)` from data/ranking.py: features (Q, L, F),
relevance (Q, L) with −1 at the padding, mask (Q, L) True for real items, query (Q,) ids.
Judged by NDCG@k (gains 2^rel − 1, = scikit-learn's `ndcg_score` on them) for each k of
`ndcg_at`, and MRR (metrics/ranking.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics import MetricCollection

from objectives import checks
from objectives.errors import ConfigError
from objectives.metrics.ranking import MRRAtK, NDCGAtK
from objectives.tasks.base import ObjectiveModule


class RankingModule(ObjectiveModule):
    """Outputs `scores` (Q, L), `relevance` (Q, L, −1 at the padding), `mask` (Q, L) and
    `query` (Q,); padded items' scores are 0 and read by nothing."""

    task_name = "ranking"
    produces = ("scores", "relevance", "mask", "query")
    primary_metric = "ndcg_10"

    def __init__(
        self, model: nn.Module, *args: Any, ndcg_at: Sequence[int] = (5, 10),
        mrr_at: int | None = None, **kwargs: Any,
    ) -> None:  # fmt: skip
        if isinstance(ndcg_at, int | str) or not isinstance(ndcg_at, Sequence) or not ndcg_at:
            raise ConfigError(
                f"task.ndcg_at must be a list of cut-offs, got {checks.show(ndcg_at)}; "
                "e.g. task.ndcg_at=[5,10]"
            )
        self.ndcg_at = [checks.positive_int(k, "task.ndcg_at", example="[5,10]") for k in ndcg_at]
        self.mrr_at = None if mrr_at is None else checks.positive_int(mrr_at, "task.mrr_at")
        super().__init__(model, *args, **kwargs)

    @classmethod
    def network_dims(cls, dims: Mapping[str, int], task_cfg: Mapping[str, Any]) -> dict[str, int]:
        """Query-group data only (it alone has a `list_size`); the network scores one item."""
        if "list_size" not in dims:
            raise ConfigError(
                "task ranking reads query groups of items; choose data=synthetic_ranking or "
                "data=letor data.path=<your LETOR file>"
            )
        return {k: v for k, v in dims.items() if k != "list_size"}

    def score(self, features: Tensor) -> Tensor:
        """(Q, L, F) → (Q, L): the network on each item alone."""
        queries, items, width = features.shape
        return self.model(features.reshape(queries * items, width)).reshape(queries, items)

    def step_outputs(self, batch: Any) -> dict[str, Tensor]:
        features, relevance, mask, query = batch
        scores = self.score(features).masked_fill(~mask, 0.0)
        return {"scores": scores, "relevance": relevance, "mask": mask, "query": query}

    def epoch_weight(self, batch: Any, outputs: Mapping[str, Tensor]) -> int:
        return len(batch[0])  # queries: the unit the terms average over

    def example_outputs(self) -> dict[str, Tensor]:
        return {
            "scores": torch.tensor([[0.5, 0.2, 0.0], [0.1, 0.3, 0.2]]),
            "relevance": torch.tensor([[1.0, 0.0, -1.0], [0.0, 2.0, 1.0]]),
            "mask": torch.tensor([[True, True, False], [True, True, True]]),
            "query": torch.tensor([0, 1]),
        }

    def configure_metrics(self, stage: str) -> MetricCollection:
        metrics: dict[str, Any] = {f"ndcg_{k}": NDCGAtK(top_k=k) for k in self.ndcg_at}
        metrics["mrr"] = MRRAtK(top_k=self.mrr_at)
        return MetricCollection(metrics, compute_groups=False)

    def metric_inputs(self, outputs: Mapping[str, Tensor]) -> Mapping[str, Tensor]:
        return {k: outputs[k] for k in ("scores", "relevance", "mask", "query")}
