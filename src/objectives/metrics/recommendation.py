"""Top-k ranking of held-out interactions over ALL items (task=recommendation, implicit).

For each user with held-out items P_u in the split, every item is scored; the items the
user interacted with before the split (`excluded`: val leaves out the training items, test
the training and val items) are left out of the ranking, and the rest are candidates C_u,
N_u = C_u − P_u the negatives. Per user, then averaged over the users:

- AUC_u = (1 / |P_u||N_u|) Σ_{i∈P_u} Σ_{j∈N_u} ([s_i > s_j] + ½[s_i = s_j]) (Rendle et al.'s
  AUC; users with no negative are left out of its mean);
- NDCG@k_u = Σ_{r≤k} [item at rank r ∈ P_u] / log₂(r + 1), divided by its best value
  Σ_{r≤min(k,|P_u|)} 1 / log₂(r + 1);
- recall@k_u = |top k ∩ P_u| / |P_u|.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from torchmetrics import Metric

CHUNK_ENTRIES = 1 << 24  # users × items scored at once


def ranking_sums(scores: Tensor, excluded: Tensor, positives: Tensor, k: int) -> Tensor:
    """Per-user [auc, has_negatives, ndcg, recall] for rows of `scores` (U, I) with boolean
    `excluded` and `positives` (U, I); rows without positives count 0 everywhere."""
    positives = positives & ~excluded
    negatives = ~excluded & ~positives
    n_pos = positives.sum(1)
    n_neg = negatives.sum(1)
    # AUC: for each positive, the negatives below it (+ half the ties), by sorted search
    ordered = torch.where(negatives, scores, torch.full_like(scores, math.inf)).sort(1).values
    below = torch.searchsorted(ordered, scores.contiguous(), right=False)
    not_above = torch.searchsorted(ordered, scores.contiguous(), right=True)
    not_above = torch.minimum(not_above, n_neg[:, None])
    below = torch.minimum(below, n_neg[:, None])
    wins = (below + 0.5 * (not_above - below)).to(scores.dtype)
    wins = torch.where(positives, wins, torch.zeros_like(wins)).sum(1)
    pairs = (n_pos * n_neg).to(scores.dtype)
    has_neg = (pairs > 0).to(scores.dtype)
    auc = torch.where(pairs > 0, wins / pairs.clamp_min(1), torch.zeros_like(wins))
    # top k of the candidates
    k = min(k, scores.shape[1])
    ranked = torch.where(excluded, torch.full_like(scores, -math.inf), scores)
    top = ranked.topk(k, dim=1).indices
    hits = positives.gather(1, top).to(scores.dtype)
    discount = 1.0 / torch.log2(torch.arange(2, k + 2, device=scores.device, dtype=scores.dtype))
    dcg = (hits * discount).sum(1)
    ideal = torch.cumsum(discount, 0)[(n_pos.clamp(1, k) - 1)]
    ndcg = torch.where(n_pos > 0, dcg / ideal, torch.zeros_like(dcg))
    recall = torch.where(n_pos > 0, hits.sum(1) / n_pos.clamp_min(1), torch.zeros_like(dcg))
    return torch.stack([auc, has_neg, ndcg, recall], dim=1)


@dataclass
class RankingContext:
    """What ranking a split needs besides its pairs: the model's scores of every item for
    some users, the pairs to leave out, and the number of items."""

    score_all: Callable[[Tensor], Tensor]
    excluded: tuple[Tensor, Tensor]
    num_items: int


def ranking_metrics(
    users: Tensor, items: Tensor, context: RankingContext, k: int = 10
) -> dict[str, Tensor]:
    """AUC, NDCG@k and recall@k of the held-out pairs (users, items) (see the module)."""
    num_items = context.num_items
    keys = torch.unique(users * num_items + items)
    users, items = keys // num_items, keys % num_items
    ranked_users = torch.unique(users)
    device = users.device
    row_of = torch.full((int(ranked_users.max()) + 1,), -1, dtype=torch.long, device=device)
    ex_users, ex_items = (t.to(device) for t in context.excluded)
    inside = ex_users <= ranked_users.max()
    ex_users, ex_items = ex_users[inside], ex_items[inside]
    chunk = max(1, CHUNK_ENTRIES // max(num_items, 1))
    sums = torch.zeros(4, dtype=torch.float64, device=device)
    for start in range(0, len(ranked_users), chunk):
        some = ranked_users[start : start + chunk]
        row_of.fill_(-1)
        row_of[some] = torch.arange(len(some), device=device)
        excluded = torch.zeros(len(some), num_items, dtype=torch.bool, device=device)
        rows = row_of[ex_users]
        excluded[rows[rows >= 0], ex_items[rows >= 0]] = True
        positives = torch.zeros_like(excluded)
        rows = row_of[users]
        positives[rows[rows >= 0], items[rows >= 0]] = True
        scores = context.score_all(some).float()
        sums += ranking_sums(scores, excluded, positives, k).double().sum(0)
    count = len(ranked_users)
    return {
        "auc": (sums[0] / sums[1].clamp_min(1)).float(),
        f"ndcg@{k}": (sums[2] / count).float(),
        f"recall@{k}": (sums[3] / count).float(),
    }


class HeldOutRanking(Metric):
    """Collects a split's held-out (user, item) pairs; `compute` ranks every item for their
    users with the `context` the task sets at the end of the epoch (metric states hold
    tensors only), and returns {auc, ndcg@k, recall@k}."""

    full_state_update = False
    higher_is_better = True

    def __init__(self, k: int = 10, **kwargs) -> None:
        super().__init__(**kwargs)
        self.k = int(k)
        self.context: RankingContext | None = None
        self.add_state("users", default=[], dist_reduce_fx="cat")
        self.add_state("items", default=[], dist_reduce_fx="cat")

    def update(self, users: Tensor, items: Tensor) -> None:
        self.users.append(users.detach().long())
        self.items.append(items.detach().long())

    def compute(self) -> dict[str, Tensor]:
        if self.context is None:
            raise RuntimeError("HeldOutRanking.compute needs a RankingContext (set by the task)")
        users = self.users if isinstance(self.users, Tensor) else torch.cat(self.users)
        items = self.items if isinstance(self.items, Tensor) else torch.cat(self.items)
        with torch.no_grad():
            return ranking_metrics(users, items, self.context, self.k)
