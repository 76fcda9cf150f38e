"""Learning-to-rank losses over query groups: `scores` (Q, L) a network gave each of a
query's L items, `relevance` (Q, L) their graded labels, `mask` (Q, L) True for real items
(lists are padded to one length; padded items take part in nothing).

The definitions are allRank's (github.com/allegro/allRank, allrank/models/losses/), which
the tests reproduce on allRank's own test inputs: eps = 1e-10, gains 2^rel − 1, log2
discounts. Where allRank marks a padded item by a relevance of −1 these read `mask`.

- `listnet`: cross-entropy between softmax(relevance) and softmax(scores) over a query's
  real items, mean over queries.
- `listmle`: the Plackett-Luce negative log-likelihood of the items ordered by relevance
  (ties in a random order, drawn each call, as allRank does), summed over a query's items,
  mean over queries.
- `ranknet`: logistic loss of s_i − s_j on every pair of real items with rel_i > rel_j,
  mean over all such pairs of the batch.
- `lambdaloss`: the LambdaLoss framework (Wang et al. 2018), by default the NDCG-Loss2++
  weighting scheme: −Σ log2(σ(s_i − s_j)^w_ij) over pairs with rel_i > rel_j.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from objectives import checks

EPS = 1e-10  # allRank's DEFAULT_EPS
SCHEMES = ("ndcgLoss2PP", "ndcgLoss2", "ndcgLoss1", "lambdaRank", "rankNet")
REDUCTIONS = ("per_query", "sum", "mean")


def _mask_of(relevance: Tensor, mask: Tensor | None) -> Tensor:
    return (relevance >= 0) if mask is None else mask.bool()


def _no_pairs(scores: Tensor) -> Tensor:
    """0 with a (zero) gradient: a batch with no pair to order has nothing to learn."""
    return scores.sum() * 0.0


def listnet(scores: Tensor, relevance: Tensor, mask: Tensor | None = None, eps: float = EPS):
    """ListNet (Cao et al. 2007), allRank's `listNet`: mean over queries of
    −Σ_i softmax(rel)_i · log(softmax(s)_i + eps), both softmaxes over the real items."""
    real = _mask_of(relevance, mask)
    scores = scores.masked_fill(~real, float("-inf"))
    relevance = relevance.to(scores.dtype).masked_fill(~real, float("-inf"))
    pred = F.softmax(scores, dim=-1)
    true = F.softmax(relevance, dim=-1)
    # padded items: true probability 0, and 0 · log(eps) = 0
    return (-(true * torch.log(pred + eps)).sum(-1)).mean()


def listmle(scores: Tensor, relevance: Tensor, mask: Tensor | None = None, eps: float = EPS):
    """ListMLE (Xia et al. 2008), allRank's `listMLE`: with the real items sorted by
    relevance (ties in a random order), mean over queries of
    Σ_i [log Σ_{j ≥ i} exp(s_j) − s_i]."""
    real = _mask_of(relevance, mask)
    order = torch.randperm(scores.shape[-1], device=scores.device)  # random tie resolution
    scores, relevance, real = scores[:, order], relevance[:, order], real[:, order]
    keyed = relevance.to(scores.dtype).masked_fill(~real, float("-inf"))
    _, indices = keyed.sort(descending=True, dim=-1, stable=True)
    sorted_scores = scores.gather(1, indices)
    sorted_real = real.gather(1, indices)
    sorted_scores = sorted_scores.masked_fill(~sorted_real, float("-inf"))
    top = sorted_scores.max(dim=1, keepdim=True).values.detach()
    top = top.masked_fill(~torch.isfinite(top), 0.0)
    shifted = sorted_scores - top
    tails = shifted.exp().flip(1).cumsum(1).flip(1)  # Σ_{j ≥ i} exp(s_j − max)
    terms = torch.log(tails + eps) - shifted.masked_fill(~sorted_real, 0.0)
    terms = terms.masked_fill(~sorted_real, 0.0)
    return terms.sum(1).mean()


def _pairs(relevance: Tensor, real: Tensor) -> Tensor:
    """(Q, L, L): True where items i and j are real and rel_i > rel_j."""
    both = real[:, :, None] & real[:, None, :]
    return both & (relevance[:, :, None] > relevance[:, None, :])


def ranknet(scores: Tensor, relevance: Tensor, mask: Tensor | None = None) -> Tensor:
    """RankNet (Burges et al. 2005), allRank's `rankNet`: mean over every pair of real
    items with rel_i > rel_j in the batch of log(1 + exp(−(s_i − s_j))). A batch without
    such a pair gives 0 (allRank's gives NaN)."""
    real = _mask_of(relevance, mask)
    pairs = _pairs(relevance, real)
    if not bool(pairs.any()):
        return _no_pairs(scores)
    diffs = (scores[:, :, None] - scores[:, None, :])[pairs]
    return F.softplus(-diffs).mean()


def _scheme_weights(scheme: str, gains: Tensor, discounts: Tensor, mu: float, rel: Tensor):
    """allRank's weighting schemes; `gains` G (Q, L) and `rel` in the predicted order,
    `discounts` D (1, L) = log2(1 + position)."""
    L = gains.shape[1]
    if scheme == "rankNet":
        return torch.ones((), dtype=gains.dtype, device=gains.device)
    if scheme == "ndcgLoss1":
        return (gains / discounts)[:, :, None]
    inverse = 1.0 / discounts[0]  # 1/D at positions 1..L
    lambda_rank = (inverse[:, None] - inverse[None, :]).abs()[None] * (
        gains[:, :, None] - gains[:, None, :]
    ).abs()
    if scheme == "lambdaRank":
        return lambda_rank
    positions = torch.arange(L, device=gains.device)
    gap = (positions[:, None] - positions[None, :]).abs()  # |i − j|
    # δ_|i−j| = |1/D(|i−j|) − 1/D(|i−j| + 1)| with D(p) = log2(1 + p); 0 on the diagonal
    full = torch.cat([inverse.new_ones(1), inverse])  # 1/D(0) stands in where gap = 0
    deltas = (full[gap] - full[(gap + 1).clamp(max=L)]).abs()
    deltas = deltas.masked_fill(gap == 0, 0.0)
    ndcg2 = deltas[None] * (gains[:, :, None] - gains[:, None, :]).abs()
    if scheme == "ndcgLoss2":
        return ndcg2
    return mu * ndcg2 + lambda_rank  # ndcgLoss2PP


def lambdaloss(
    scores: Tensor,
    relevance: Tensor,
    mask: Tensor | None = None,
    scheme: str = "ndcgLoss2PP",
    k: int | None = None,
    sigma: float = 1.0,
    mu: float = 10.0,
    reduction: str = "per_query",
    log_base: str = "binary",
    eps: float = EPS,
) -> Tensor:
    """LambdaLoss (Wang et al. 2018), allRank's `lambdaLoss`: items sorted by score,
    −Σ log(clamp(σ(σ_s (s_i − s_j)), eps)^w_ij) over pairs with rel_i > rel_j (every pair
    of real items with scheme ndcgLoss1) among the top `k` positions, w_ij from `scheme`
    (NDCG-Loss2++ by default, with `mu`; `rankNet`: w = 1).

    `reduction`: `sum` over the batch's pairs (allRank's default), `mean` over them, or
    `per_query` (here the default): the sum divided by the number of queries, so the value
    does not grow with the batch size and equals allRank's for a batch of one query.
    `log_base`: `binary` (log2, allRank's default) or `natural`."""
    scheme = checks.one_of(scheme, "loss.lambdaloss.fn.scheme", SCHEMES)
    reduction = checks.one_of(reduction, "loss.lambdaloss.fn.reduction", REDUCTIONS)
    log_base = checks.one_of(log_base, "loss.lambdaloss.fn.log_base", ("binary", "natural"))
    real = _mask_of(relevance, mask)
    relevance = relevance.to(scores.dtype)
    L = scores.shape[1]
    k = L if k is None else min(int(k), L)
    # sort by score, padded items last
    _, indices = scores.masked_fill(~real, float("-inf")).sort(descending=True, dim=-1)
    sorted_scores = scores.gather(1, indices)
    sorted_real = real.gather(1, indices)
    rel_by_pred = relevance.gather(1, indices).masked_fill(~sorted_real, 0.0).clamp(min=0.0)
    ideal = relevance.masked_fill(~real, 0.0).clamp(min=0.0).sort(descending=True, dim=-1)[0]
    positions = torch.arange(1, L + 1, device=scores.device, dtype=scores.dtype)
    discounts = torch.log2(1.0 + positions)[None, :]
    max_dcg = ((2.0**ideal - 1.0) / discounts)[:, :k].sum(-1).clamp(min=eps)
    gains = (2.0**rel_by_pred - 1.0) / max_dcg[:, None]
    weights = _scheme_weights(scheme, gains, discounts, mu, rel_by_pred)

    both = sorted_real[:, :, None] & sorted_real[:, None, :]
    pairs = (
        both
        if scheme == "ndcgLoss1"
        else both & (rel_by_pred[:, :, None] > rel_by_pred[:, None, :])
    )
    top_k = torch.zeros(L, L, dtype=torch.bool, device=scores.device)
    top_k[:k, :k] = True
    pairs = pairs & top_k
    if not bool(pairs.any()):
        return _no_pairs(scores)
    diffs = (sorted_scores[:, :, None] - sorted_scores[:, None, :]).clamp(min=-1e8, max=1e8)
    probs = (torch.sigmoid(sigma * diffs).clamp(min=eps) ** weights).clamp(min=eps)
    logs = torch.log2(probs) if log_base == "binary" else torch.log(probs)
    chosen = logs[pairs]
    if reduction == "mean":
        return -chosen.mean()
    total = -chosen.sum()
    return total / scores.shape[0] if reduction == "per_query" else total
