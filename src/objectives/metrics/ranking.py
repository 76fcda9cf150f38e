"""Ranking metrics over query groups, torchmetrics' retrieval metrics fed by query.

`update(scores, relevance, mask, query)` takes a batch of padded lists (the ranking task's
outputs): each real item becomes one retrieval row, `indexes` its query's id, so a query
is judged as a whole however the epoch's batches fall.

- `NDCGAtK`: NDCG@k with exponential gains 2^rel − 1 and log2 discounts, ties in the
  scores averaged: equal to scikit-learn's `ndcg_score(2**rel - 1, scores, k=k)`. A query
  with no relevant item (every rel = 0) scores 0, as in scikit-learn and allRank.
- `MRRAtK`: the mean reciprocal rank of the first item with rel > 0 (within the top k,
  if k is set); a query with no relevant item scores 0, as in allRank. Written here:
  torchmetrics' RetrievalMRR (1.9) counts an item relevant only where its score is > 0,
  which a ranking network's scores need not be. Items of equal score keep their list order
  (a stable sort). A batch holds whole queries, so it is computed batch by batch.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.retrieval import RetrievalNormalizedDCG


def _rows(scores: Tensor, mask: Tensor, query: Tensor) -> tuple[Tensor, Tensor]:
    mask = mask.bool()
    indexes = query[:, None].expand_as(mask)[mask]
    return scores.detach().float()[mask], indexes


class NDCGAtK(RetrievalNormalizedDCG):
    """NDCG@k of padded query lists, gains 2^rel − 1 (`top_k=None`: the whole list)."""

    def update(  # type: ignore[override]
        self, scores: Tensor, relevance: Tensor, mask: Tensor, query: Tensor, **_: Any
    ) -> None:
        preds, indexes = _rows(scores, mask, query)
        gains = (2 ** relevance[mask.bool()].round().long()) - 1
        super().update(preds, gains, indexes=indexes)


class MRRAtK(Metric):
    """MRR of padded query lists, an item relevant when rel > 0 (`top_k`: only the first
    relevant item within the top k counts; null: anywhere)."""

    higher_is_better = True
    full_state_update = False

    def __init__(self, top_k: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.top_k = top_k
        self.add_state(
            "total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum"
        )
        self.add_state(
            "queries", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum"
        )

    def update(  # type: ignore[override]
        self, scores: Tensor, relevance: Tensor, mask: Tensor, query: Tensor | None = None,
        **_: Any,
    ) -> None:  # fmt: skip
        mask = mask.bool()
        keyed = scores.detach().float().masked_fill(~mask, float("-inf"))
        order = keyed.argsort(dim=-1, descending=True, stable=True)
        relevant = ((relevance > 0) & mask).gather(1, order)
        if self.top_k is not None:
            relevant = relevant[:, : self.top_k]
        first = relevant.float().argmax(dim=-1)  # the first True (0 where none)
        reciprocal = torch.where(relevant.any(-1), 1.0 / (first + 1.0), 0.0)
        real = mask.any(-1)
        self.total += reciprocal[real].sum().double()
        self.queries += real.sum().double()

    def compute(self) -> Tensor:
        return (self.total / self.queries.clamp(min=1)).float()
