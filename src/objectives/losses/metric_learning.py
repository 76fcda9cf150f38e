"""Metric-learning losses for labelled embeddings: ArcFace, CosFace and multi-similarity.

ArcFace and CosFace are softmax losses over the cosines between an embedding and one learned
direction a class, W (embedding_size × num_classes), with a margin on the true class's
cosine: ArcFace adds it to the angle, cos(θ_y + m); CosFace subtracts it from the cosine,
cos θ_y − m. The logits are `scale` × the cosines. W is the term's own parameter: trained
with the network (in an optimizer group of its own when the loss file sets `lr`) and saved in
checkpoints, sized from the task (`fit_sizes`) since the loss is built before the data.

Multi-similarity (Wang et al. 2019) weighs the in-batch pairs by their cosine similarity S:
for each anchor, (1/α)·log(1 + Σ_pos e^{−α(S − λ)}) + (1/β)·log(1 + Σ_neg e^{β(S − λ)}), over
the pairs its miner keeps (a positive less similar than the most similar negative + ε, a
negative more similar than the least similar positive − ε), averaged over the anchors.

The definitions follow pytorch-metric-learning's (ArcFaceLoss, CosFaceLoss,
MultiSimilarityLoss with MultiSimilarityMiner) and equal them, loss and gradients
(tests/test_metric_learning.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from objectives import checks
from objectives.errors import ConfigError


class MarginSoftmax(nn.Module):
    """Cross-entropy over `scale`·cos(embedding, W_c), the true class's cosine given a margin."""

    margin_name = "margin"

    def __init__(
        self,
        scale: float = 64.0,
        num_classes: int | None = None,
        embedding_size: int | None = None,
    ) -> None:
        super().__init__()
        self.scale = checks.number(scale, "loss.fn.scale", low=0, low_open=True, example=64)
        self.num_classes = num_classes
        self.embedding_size = embedding_size
        # W, once the sizes are known (a parameter now if the config set both)
        self.W: nn.Parameter | None = None
        if num_classes is not None and embedding_size is not None:
            self.fit_sizes({})

    def fit_sizes(self, sizes: Mapping[str, int]) -> None:
        """Create W (embedding_size × num_classes, N(0, 1) as pytorch-metric-learning
        initialises it) from the task's `embedding_size` and the data's `num_classes`."""
        for key in ("num_classes", "embedding_size"):
            given, found = getattr(self, key), sizes.get(key)
            if given is not None and found is not None and int(given) != int(found):
                raise ConfigError(
                    f"loss.fn.{key}={given} but the task has {key}={found}; "
                    f"remove loss.fn.{key} (it is read from the task)"
                )
            value = given if given is not None else found
            if value is None:
                raise ConfigError(
                    f"{type(self).__name__} needs {key}; use a task that gives it "
                    "(task=metric_learning) or set loss.fn." + key
                )
            setattr(self, key, checks.positive_int(value, f"loss.fn.{key}"))
        if self.num_classes < 2:
            raise ConfigError(
                f"{type(self).__name__} needs 2 or more classes, the data has "
                f"{self.num_classes}; use labelled data with several classes"
            )
        if self.W is None or tuple(self.W.shape) != (self.embedding_size, self.num_classes):
            self.W = nn.Parameter(torch.empty(self.embedding_size, self.num_classes).normal_())

    def margin_cosine(self, cosine: Tensor) -> Tensor:
        """The true class's cosine with the margin applied."""
        raise NotImplementedError

    def logits(self, embeddings: Tensor) -> Tensor:
        """`scale` × cos(embedding, W_c) for every class, without the margin: what a
        classifier by the nearest class direction ranks."""
        return self.scale * self.cosines(embeddings)

    def cosines(self, embeddings: Tensor) -> Tensor:
        if self.W is None:
            raise RuntimeError(f"{type(self).__name__} has no W yet: call fit_sizes first")
        return F.normalize(embeddings, dim=1) @ F.normalize(self.W, dim=0)

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        cosine = self.cosines(embeddings)
        target = cosine.gather(1, labels[:, None])
        true_class = F.one_hot(labels, self.num_classes)
        shifted = cosine + true_class * (self.margin_cosine(target) - target)
        return F.cross_entropy(self.scale * shifted, labels)

    def extra_repr(self) -> str:
        sizes = f"num_classes={self.num_classes}, embedding_size={self.embedding_size}"
        return f"{self.margin_name}={getattr(self, self.margin_name)}, scale={self.scale}, {sizes}"


class ArcFace(MarginSoftmax):
    """cos(θ_y + m), m in degrees (28.6° ≈ 0.5 rad); where θ_y + m would pass 180° the
    cosine would rise again, so there it is cos θ_y − m·sin m (monotone in θ_y)."""

    def __init__(self, margin: float = 28.6, scale: float = 64.0, **sizes: int | None) -> None:
        self.margin = checks.number(margin, "loss.fn.margin", low=0, high=180, high_open=True,
                                    example=28.6)  # fmt: skip
        super().__init__(scale=scale, **sizes)
        self.radians = math.radians(self.margin)

    def margin_cosine(self, cosine: Tensor) -> Tensor:
        angle = torch.acos(cosine.clamp(-1, 1))
        return torch.where(
            angle <= math.pi - self.radians,
            torch.cos(angle + self.radians),
            torch.cos(angle) - self.radians * math.sin(self.radians),
        )


class CosFace(MarginSoftmax):
    """cos θ_y − m."""

    def __init__(self, margin: float = 0.35, scale: float = 64.0, **sizes: int | None) -> None:
        self.margin = checks.number(margin, "loss.fn.margin", low=0, example=0.35)
        super().__init__(scale=scale, **sizes)

    def margin_cosine(self, cosine: Tensor) -> Tensor:
        return cosine - self.margin


def _log_one_plus_sum_exp(x: Tensor, keep: Tensor) -> Tensor:
    """log(1 + Σ_{kept j} e^{x_ij}) for each row; 0 for a row that keeps nothing."""
    x = x.masked_fill(~keep, -math.inf)
    x = torch.cat([x, x.new_zeros(len(x), 1)], dim=1)
    return torch.logsumexp(x, dim=1).masked_fill(~keep.any(dim=1), 0.0)


def mined_pairs(
    similarity: Tensor, positive: Tensor, negative: Tensor, epsilon: float
) -> tuple[Tensor, Tensor]:
    """The multi-similarity miner: positives less similar than the anchor's most similar
    negative + ε, negatives more similar than its least similar positive − ε."""
    with torch.no_grad():
        hardest_negative = similarity.masked_fill(~negative, -math.inf).amax(dim=1, keepdim=True)
        hardest_positive = similarity.masked_fill(~positive, math.inf).amin(dim=1, keepdim=True)
        return (positive & (similarity - epsilon < hardest_negative),
                negative & (similarity + epsilon > hardest_positive))  # fmt: skip


def multi_similarity(
    embeddings: Tensor,
    labels: Tensor,
    alpha: float = 2.0,
    beta: float = 50.0,
    base: float = 0.5,
    epsilon: float | None = 0.1,
) -> Tensor:
    """The multi-similarity loss on cosine similarities, averaged over the anchors;
    `epsilon`: the miner's, None to weigh every pair."""
    z = F.normalize(embeddings, dim=1)
    similarity = z @ z.T
    same = labels[:, None] == labels[None, :]
    positive = same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    negative = ~same
    if epsilon is not None:
        if not positive.any() or not negative.any():  # the miner finds no pair at all
            return (embeddings * 0).sum()
        positive, negative = mined_pairs(similarity, positive, negative, float(epsilon))
    if positive.sum() <= 1 and negative.sum() <= 1:  # as pytorch-metric-learning: nothing to learn
        return (embeddings * 0).sum()
    pull = _log_one_plus_sum_exp(alpha * (base - similarity), positive) / alpha
    push = _log_one_plus_sum_exp(beta * (similarity - base), negative) / beta
    return (pull + push).mean()
