"""Recommendation: user and item ids to a score (model=matrix_factorization).

Explicit feedback (ratings): outputs `pred` and `target` (loss=mse: the seed's RMSE
objective), judged by RMSE and MAE. Implicit feedback (interactions only): `pos_score` and
`neg_score` of an observed item and one sampled item the user has not interacted with
(loss=bpr), judged at the end of each val/test epoch by AUC, NDCG@k and recall@k over all
items (metrics/recommendation.py). Both modes also output the vectors and biases of the
batch's users and items (`user_vectors`, `item_vectors`, `user_bias`, `item_bias`), which
loss=embedding_l2 reads. The mode is the data's (`data.feedback`, which `task.feedback`
follows).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection

from objectives import checks
from objectives.errors import ConfigError
from objectives.metrics.recommendation import HeldOutRanking, RankingContext
from objectives.objective.tags import EPOCH_PREFIX
from objectives.tasks.base import ObjectiveModule

FEEDBACK = ("explicit", "implicit")
VECTORS = ("user_vectors", "item_vectors", "user_bias", "item_bias")
PRODUCES = {
    "explicit": ("pred", "target", *VECTORS),
    "implicit": ("pos_score", "neg_score", *VECTORS),
}


class RecommendationModule(ObjectiveModule):
    """Batches are dicts `{"users", "items", "ratings"}` (+ `"negatives"`, implicit)."""

    task_name = "recommendation"
    model_kind = "recommendation"
    produces = ("pred", "target", "pos_score", "neg_score", *VECTORS)
    primary_metric = "rmse"

    @classmethod
    def headline_metric(cls, task_cfg: Mapping[str, Any]) -> str:
        """RMSE judges explicit ratings; implicit feedback has no rating to err on: AUC."""
        return "auc" if task_cfg.get("feedback") == "implicit" else cls.primary_metric

    def __init__(
        self, model: nn.Module, objective: Any, feedback: str = "explicit", k: int = 10,
        **kwargs: Any,
    ) -> None:  # fmt: skip
        if not all(callable(getattr(model, m, None)) for m in ("factors", "score_all")):
            raise ConfigError(
                f"task recommendation needs a user-item model (model=matrix_factorization), "
                f"got {type(model).__name__}"
            )
        self.feedback = checks.one_of(feedback, "task.feedback", FEEDBACK)
        self.k = checks.positive_int(k, "task.k", example=10)
        self.produces = PRODUCES[self.feedback]
        self.vector_size = int(model.rank)
        for named in [objective] if not isinstance(objective, Mapping) else objective.values():
            for term in named.terms:
                missing = [key for key in term.reads if key not in self.produces]
                if missing:
                    other = "implicit" if self.feedback == "explicit" else "explicit"
                    raise ConfigError(
                        f"{term.kind} '{term.name}' reads {', '.join(missing)}, which task "
                        f"recommendation produces for {other} feedback, but the data's is "
                        f"{self.feedback} (data.feedback); explicit: loss=mse, implicit: loss=bpr"
                    )
        super().__init__(model, objective, **kwargs)

    # -- learning ------------------------------------------------------------------------------
    def step_outputs(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        users, items = batch["users"], batch["items"]
        model = self.model
        if self.feedback == "explicit":
            p, q, b_u, b_i = model.factors(users, items)
            return {
                "pred": model.combine(p, q, b_u, b_i),
                "target": batch["ratings"],
                "user_vectors": p, "item_vectors": q, "user_bias": b_u, "item_bias": b_i,
            }  # fmt: skip
        both = torch.stack([items, batch["negatives"]], dim=1)  # (B, 2): observed, sampled
        p, q, b_u, b_i = model.factors(users.unsqueeze(1), both)
        scores = model.combine(p, q, b_u, b_i)
        return {
            "pos_score": scores[:, 0], "neg_score": scores[:, 1],
            "user_vectors": p[:, 0], "item_vectors": q, "user_bias": b_u[:, 0], "item_bias": b_i,
            "users": users, "items": items,
        }  # fmt: skip

    def epoch_weight(self, batch: Mapping[str, Tensor], outputs: Mapping[str, Tensor]) -> int:
        return len(batch["users"])

    def example_outputs(self) -> dict[str, Tensor]:
        rows, rank = 2, self.vector_size
        vectors = {"user_vectors": torch.zeros(rows, rank), "user_bias": torch.zeros(rows)}
        if self.feedback == "explicit":
            items = {"item_vectors": torch.zeros(rows, rank), "item_bias": torch.zeros(rows)}
            return {"pred": torch.zeros(rows), "target": torch.zeros(rows), **vectors, **items}
        items = {"item_vectors": torch.zeros(rows, 2, rank), "item_bias": torch.zeros(rows, 2)}
        return {"pos_score": torch.zeros(rows), "neg_score": torch.zeros(rows), **vectors, **items}

    # -- judging -------------------------------------------------------------------------------
    def configure_metrics(self, stage: str) -> MetricCollection:
        if self.feedback == "explicit":
            return MetricCollection(
                {"rmse": MeanSquaredError(squared=False), "mae": MeanAbsoluteError()}
            )
        if stage == "train":  # a ranking of the training pairs themselves says nothing
            return MetricCollection({})
        return MetricCollection({"ranking": HeldOutRanking(self.k)}, compute_groups=False)

    def metric_inputs(self, outputs: Mapping[str, Tensor]) -> tuple[Tensor, ...] | Mapping:
        if self.feedback == "explicit":
            return outputs["pred"], outputs["target"]
        return {"users": outputs["users"], "items": outputs["items"]}

    @contextmanager
    def _ranking(self, stage: str) -> Iterator[None]:
        """The ranking metric of `stage` gets the model's scores and the pairs to leave out
        for the epoch-end compute, and lets go of them afterwards."""
        metrics = self.metrics[EPOCH_PREFIX[stage]]
        ranking = [m for m in metrics.values() if isinstance(m, HeldOutRanking)]
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer else None
        if not ranking or datamodule is None or not hasattr(datamodule, "known"):
            yield
            return
        context = RankingContext(
            self.model.score_all, datamodule.known(stage), int(self.model.num_items)
        )
        for metric in ranking:
            metric.context = context
        try:
            yield
        finally:
            for metric in ranking:
                metric.context = None

    def on_validation_epoch_end(self) -> None:
        with self._ranking("val"):
            super().on_validation_epoch_end()

    def on_test_epoch_end(self) -> None:
        with self._ranking("test"):
            super().on_test_epoch_end()

    def setup(self, stage: str) -> None:
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer else None
        feedback = getattr(datamodule, "feedback", self.feedback)
        if feedback != self.feedback:
            raise ConfigError(
                f"task.feedback={self.feedback} but the data's feedback is {feedback}; "
                f"leave task.feedback to follow data.feedback"
            )

    def predictions(self, batch: tuple[Tensor, ...], **settings: Any) -> dict[str, Tensor]:
        """For (user index, item index) rows: the predicted score."""
        users, items = batch[0][:, 0].long(), batch[0][:, 1].long()
        return {"pred": self.model(users, items)}
