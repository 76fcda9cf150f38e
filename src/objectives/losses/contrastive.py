"""Contrastive losses on two views: NT-Xent (SimCLR), supervised contrastive, mined triplets.

Each reads the projections `z1`, `z2` (N, D) of two augmented views of the same N images
(row i of z1 and row i of z2 are a positive pair) and, for SupCon and the triplet loss, the
class `labels` (N,). The 2N views are stacked as [z1; z2], so view i and view i + N are the
two views of image i. Under multi-device training the task gathers the rows of every
process first, so these functions always see the one global batch.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from objectives import checks

MINING = ("semi_hard", "hard", "all")
DISTANCES = ("euclidean", "cosine")


def _views(z1: Tensor, z2: Tensor) -> Tensor:
    """The 2N views [z1; z2] as one (2N, D) tensor; half precision is lifted to float32."""
    if z1.ndim != 2 or z1.shape != z2.shape:
        raise ValueError(
            f"z1 and z2 must both be (N, D) with the same shape, got "
            f"{tuple(z1.shape)} and {tuple(z2.shape)}"
        )
    views = torch.cat([z1, z2])
    # exp(1/τ) of a float16 logit overflows at τ < 0.09; the loss is cheap next to the network
    return views.float() if views.dtype in (torch.float16, torch.bfloat16) else views


def _view_labels(labels: Tensor, n: int) -> Tensor:
    """The labels of the 2N views: each image's label, once per view."""
    labels = labels.reshape(-1)
    if labels.numel() != n:
        raise ValueError(f"labels has {labels.numel()} entries for {n} pairs of views")
    return torch.cat([labels, labels])


def _similarity_logits(views: Tensor, temperature: float) -> Tensor:
    """Cosine similarities / τ of every view against every other, (2N, 2N), the diagonal -inf.

    The diagonal is a view's similarity with itself: always 1 (the largest possible), it
    says nothing about the encoder and would dominate every softmax, so it is removed from
    the candidates: -inf gives it probability exactly 0 (and no gradient), leaving each
    view to pick its positive among the 2N − 1 others.
    """
    unit = F.normalize(views, dim=1)
    logits = unit @ unit.T / temperature
    self_pairs = torch.eye(len(views), dtype=torch.bool, device=views.device)
    return logits.masked_fill(self_pairs, float("-inf"))


def nt_xent(z1: Tensor, z2: Tensor, temperature: float = 0.5) -> Tensor:
    """NT-Xent (normalised temperature-scaled cross-entropy; Chen et al. 2020, SimCLR), the
    InfoNCE loss over the 2N views, averaged over the views:

        ℓ_i = −log( exp(s(i, j(i))/τ) / Σ_{k ≠ i} exp(s(i, k)/τ) ),   s = cosine similarity

    where j(i) is the other view of view i's image: each view must pick its positive out of
    the 2N − 1 other views, the 2N − 2 views of the other images acting as negatives.

    τ sets how sharp the softmax is: a small τ concentrates the loss (and the gradient) on
    the negatives most similar to the anchor, the hard ones; a large τ spreads it evenly
    and, as τ → ∞, the loss tends to ln(2N − 1) whatever the embedding. 0.5 is SimCLR's
    CIFAR-10 setting; smaller values (0.1) suit large batches. Cosine similarity
    (L2-normalised rows) keeps the logits within ±1/τ, so the loss cannot be lowered by
    just growing the embeddings.

    Written as cross-entropy over the (2N, 2N) logits, which is evaluated with logsumexp
    and so never overflows.
    """
    tau = checks.number(
        temperature, "loss.nt_xent.fn.temperature", low=0, low_open=True, example=0.5
    )
    views = _views(z1, z2)
    n = len(z1)
    logits = _similarity_logits(views, tau)
    positive = torch.arange(2 * n, device=views.device).roll(n)  # view i ↔ view i ± N
    return F.cross_entropy(logits, positive)


def supcon(z1: Tensor, z2: Tensor, labels: Tensor, temperature: float = 0.1) -> Tensor:
    """Supervised contrastive loss (Khosla et al. 2020, L_out, their eq. 2) over the 2N views:

        ℓ_i = −1/|P(i)| · Σ_{p ∈ P(i)} log( exp(s(i, p)/τ) / Σ_{k ≠ i} exp(s(i, k)/τ) )

    with P(i) every other view of the same label (the other view of the same image among
    them, so P(i) is never empty), mean over the 2N views. It is NT-Xent with the labels
    telling which other views are positives too; with all labels distinct the two are
    equal. The average over positives sits outside the log (L_out): Khosla et al. found
    it trains markedly better than L_in (the average inside the log, which by Jensen's
    inequality is a lower bound of L_out). τ = 0.1 is the paper's.
    """
    tau = checks.number(
        temperature, "loss.supcon.fn.temperature", low=0, low_open=True, example=0.1
    )
    views = _views(z1, z2)
    view_labels = _view_labels(labels, len(z1))
    logits = _similarity_logits(views, tau)
    log_prob = logits - logits.logsumexp(dim=1, keepdim=True)  # the diagonal stays -inf
    same = view_labels[:, None] == view_labels[None, :]
    positives = same & ~torch.eye(len(views), dtype=torch.bool, device=views.device)
    # where(), not a product with the mask: 0 · (−inf) on the diagonal would be NaN
    positive_log_prob = torch.where(positives, log_prob, log_prob.new_zeros(()))
    per_view = -positive_log_prob.sum(dim=1) / positives.sum(dim=1)
    return per_view.mean()


def _cosine_distance(a: Tensor, b: Tensor) -> Tensor:
    return 1.0 - F.cosine_similarity(a, b, dim=-1)


class TripletLoss(nn.Module):
    """Triplet loss with triplets mined in the batch (Schroff et al. 2015, FaceNet):
    mean over the mined (anchor a, positive p, negative n) of

        max(0, d(a, p) − d(a, n) + margin)

    computed by torch (`F.triplet_margin_with_distance_loss`); this module only mines.
    The anchors are the 2N views [z1; z2], each labelled with its image's label; positives
    are the other views of the same label (at least the other view of the same image),
    negatives the views of other labels. An anchor without a negative (every label in the
    batch the same) makes no triplet; a batch with no triplet gives 0, still connected to
    the graph so backward works.

    Mining (distances measured without gradient; the mined triplets are then a constant
    choice, and the gradient flows through torch's loss of their rows):

    - `semi_hard` (FaceNet): for every (anchor, positive) pair, the closest negative that
      is farther than the positive but within the margin, d(a,p) < d(a,n) < d(a,p) + margin;
      when there is none, the hardest (closest) negative. Semi-hard negatives still violate
      the margin, so they teach something, but are not closer than the positive: FaceNet
      found that training on the hardest negatives from the start can collapse the model
      (f(x) = const, every distance 0, loss = margin).
    - `hard` ("batch hard", Hermans et al. 2017): for each anchor, its farthest positive and
      its closest negative: one triplet per anchor, the most violated one.
    - `all`: every valid (a, p, n). Most are already satisfied and contribute 0 to the mean,
      which dilutes the gradient; and there are O((2N)³) of them, so the loss is evaluated on
      a (2N, 2N) distance matrix (torch's formula, the distance looked up by index) instead
      of on the rows of each triplet.

    `distance`: `euclidean` (‖a − b‖, torch's pairwise distance) or `cosine` (1 − cos(a, b),
    insensitive to the embeddings' length; the margin is then in units of 1 − cos, in [0, 2]).
    Euclidean distances for mining (and for `all`) come from `torch.cdist`, which lacks the
    1e-6 torch's pairwise distance adds to each difference: they agree to ~1e-6·√D, which
    can only matter between near-tied candidates.
    The margin must be > 0 (torch requires it): with margin 0, the collapsed embedding has
    zero loss.
    """

    def __init__(
        self, margin: float = 0.2, mining: str = "semi_hard", distance: str = "euclidean"
    ) -> None:
        super().__init__()
        key = "loss.triplet.fn"
        self.margin = checks.number(margin, f"{key}.margin", low=0, low_open=True, example=0.2)
        self.mining = checks.one_of(mining, f"{key}.mining", MINING)
        self.distance = checks.one_of(distance, f"{key}.distance", DISTANCES)

    def pair_distance(self) -> Callable[[Tensor, Tensor], Tensor] | None:
        """The distance torch's loss applies to rows (None: its own pairwise distance)."""
        return _cosine_distance if self.distance == "cosine" else None

    def distance_matrix(self, embeddings: Tensor) -> Tensor:
        """d(i, j) for every pair of rows, (M, M), the distance `pair_distance` measures."""
        if self.distance == "cosine":
            unit = F.normalize(embeddings, dim=1)
            return 1.0 - unit @ unit.T
        # the direct difference, not ‖a‖² + ‖b‖² − 2a·b, which loses close pairs to rounding
        return torch.cdist(embeddings, embeddings, compute_mode="donot_use_mm_for_euclid_dist")

    @torch.no_grad()
    def mine(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Row indices (anchor, positive, negative) of the triplets mined among `embeddings`
        (M, D) with `labels` (M,); ties go to the lowest index."""
        dist = self.distance_matrix(embeddings)
        same = labels[:, None] == labels[None, :]
        positive = same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
        negative = ~same
        inf = torch.tensor(float("inf"), dtype=dist.dtype, device=dist.device)
        if self.mining == "hard":
            anchor = torch.nonzero(positive.any(1) & negative.any(1)).squeeze(1)
            farthest_positive = torch.where(positive, dist, -inf).argmax(1)
            closest_negative = torch.where(negative, dist, inf).argmin(1)
            return anchor, farthest_positive[anchor], closest_negative[anchor]
        if self.mining == "all":
            a, p, n = torch.nonzero(positive[:, :, None] & negative[:, None, :]).unbind(1)
            return a, p, n
        # semi_hard: every (anchor, positive) pair whose anchor has a negative
        a, p = torch.nonzero(positive & negative.any(1, keepdim=True)).unbind(1)
        d_ap = dist[a, p][:, None]
        d_an = dist[a]  # (pairs, M)
        is_negative = negative[a]
        band = is_negative & (d_an > d_ap) & (d_an < d_ap + self.margin)
        semi_hard = torch.where(band, d_an, inf).argmin(1)
        hardest = torch.where(is_negative, d_an, inf).argmin(1)
        return a, p, torch.where(band.any(1), semi_hard, hardest)

    def forward(self, z1: Tensor, z2: Tensor, labels: Tensor) -> Tensor:
        embeddings = _views(z1, z2)
        a, p, n = self.mine(embeddings, _view_labels(labels, len(z1)))
        if len(a) == 0:
            return embeddings[:0].sum()  # exactly 0, with a graph
        if self.mining == "all":
            dist = self.distance_matrix(embeddings)
            return F.triplet_margin_with_distance_loss(
                a, p, n, distance_function=lambda i, j: dist[i, j], margin=self.margin
            )
        return F.triplet_margin_with_distance_loss(
            embeddings[a],
            embeddings[p],
            embeddings[n],
            distance_function=self.pair_distance(),
            margin=self.margin,
        )

    def extra_repr(self) -> str:
        return f"margin={self.margin:g}, mining={self.mining!r}, distance={self.distance!r}"
