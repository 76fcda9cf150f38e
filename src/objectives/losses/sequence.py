"""Sequence losses: CTC and per-token cross-entropy, each a sum over the real tokens divided
by `tokens`.

Padding: targets are (N, L) class ids padded with `PAD` (= −100, torch's `ignore_index`);
id 0 is never a target (it is CTC's blank, torch's default, and the input padding of token
data). A batch's real tokens are its targets that are not `PAD`.

Normalisation: every loss here returns Σ over the batch's real tokens / `tokens`, where the
task hands over `tokens` (tasks/token_normalisation.py): in training the real tokens of the
whole optimiser step (all accumulated micro-batches, all processes) over A·W, so that
Lightning's ÷A and DDP's ÷W cancel and the gradient is the one of a single big batch; in
evaluation the batch's own real tokens. Torch's `reduction="mean"` would divide each
micro-batch by its own count, which weighs short and long sequences differently once
micro-batches are accumulated or spread over devices.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from objectives import checks

PAD = -100  # torch's default ignore_index


def real_tokens(targets: Tensor) -> Tensor:
    """How many of `targets` (N, L) are not padding, per sequence: (N,)."""
    return (targets != PAD).sum(1)


def at_least_float32(logits: Tensor) -> Tensor:
    """Half-precision logits in float32 (log-softmax sums underflow in 16 bits); float32 and
    float64 as they are."""
    return logits if logits.dtype in (torch.float32, torch.float64) else logits.float()


def ctc_needed_steps(targets: Tensor, target_lengths: Tensor) -> Tensor:
    """The fewest time steps an alignment of each target needs: one a label, plus one blank
    between every two equal neighbours (CTC merges repeats that no blank separates)."""
    same = (targets[:, 1:] == targets[:, :-1]) & (targets[:, 1:] != PAD)
    return target_lengths + same.sum(1)


class CTC(nn.Module):
    """Connectionist temporal classification (Graves et al., 2006) through torch's
    `ctc_loss`, on batch-first `logits` (N, T, C).

    Torch wants log-probabilities time-first (T, N, C), `input_lengths` ≤ T and targets
    without the blank; this module takes the logits as a network gives them, applies
    log-softmax (in float32 at least) and transposes. Each sequence's −log p(target | input)
    (a sum over every alignment) is summed over the batch (`reduction="sum"`) and divided by
    `tokens`.

    A target no alignment can reach (fewer time steps than `ctc_needed_steps`) has
    probability 0: −log p = ∞. With `zero_infinity=false` that ∞ reaches the objective and
    the non-finite guard stops the run naming the term (the task also refuses such data at
    start-up); with `zero_infinity=true` torch drops those sequences (loss and gradient 0),
    and the task logs how many there are (and refuses a split none of whose sequences can
    be aligned: its J would be 0 whatever the model).
    """

    def __init__(self, blank: int = 0, zero_infinity: bool = False) -> None:
        super().__init__()
        self.blank = checks.integer(blank, "loss.ctc.fn.blank", low=0, example=0)
        self.zero_infinity = checks.boolean(zero_infinity, "loss.ctc.fn.zero_infinity")

    def forward(
        self,
        logits: Tensor,
        targets: Tensor,
        input_lengths: Tensor,
        target_lengths: Tensor,
        tokens: Tensor,
    ) -> Tensor:
        log_probs = at_least_float32(logits).log_softmax(-1).transpose(0, 1)
        # torch reads only the first target_length labels; the padding becomes a valid id
        labels = targets.masked_fill(targets == PAD, self.blank + 1 if self.blank == 0 else 0)
        total = F.ctc_loss(
            log_probs,
            labels,
            input_lengths,
            target_lengths,
            blank=self.blank,
            reduction="sum",
            zero_infinity=self.zero_infinity,
        )
        return total / tokens

    def extra_repr(self) -> str:
        return f"blank={self.blank}, zero_infinity={self.zero_infinity}, reduction=sum/tokens"


class TokenCrossEntropy(nn.Module):
    """Cross-entropy of every real token, torch's `cross_entropy` with `ignore_index=PAD` and
    `label_smoothing` ε, summed and divided by `tokens`. Per token, with C classes:

        (1 − ε)·(−log p_y) + ε·(1/C)·Σ_c −log p_c

    The second part is what smoothing adds; `SmoothingPart` gives it alone, for the log.
    `logits` (N, T, C) and `targets` (N, T): one prediction a target position.
    """

    def __init__(self, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.label_smoothing = checks.number(
            label_smoothing, "loss.token_ce.fn.label_smoothing", low=0, high=1, example=0.1
        )

    def forward(self, logits: Tensor, targets: Tensor, tokens: Tensor) -> Tensor:
        total = F.cross_entropy(
            at_least_float32(logits).flatten(0, 1),
            targets.flatten(),
            ignore_index=PAD,
            label_smoothing=self.label_smoothing,
            reduction="sum",
        )
        return total / tokens

    def extra_repr(self) -> str:
        return f"label_smoothing={self.label_smoothing:g}, ignore_index={PAD}, reduction=sum/tokens"


class SmoothingPart(nn.Module):
    """The label-smoothing part of `TokenCrossEntropy`: ε·(1/C)·Σ_c −log p_c, summed over the
    real tokens and divided by `tokens` (ε = 0 gives 0). Logged beside the loss, it shows how
    much of the loss is the pull towards uniform predictions rather than the data."""

    def __init__(self, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.label_smoothing = checks.number(
            label_smoothing, "loss.token_ce.fn.label_smoothing", low=0, high=1, example=0.1
        )

    def forward(self, logits: Tensor, targets: Tensor, tokens: Tensor) -> Tensor:
        uniform = -at_least_float32(logits).log_softmax(-1).mean(-1)  # (N, T): (1/C)·Σ_c −log p_c
        real = targets != PAD
        return self.label_smoothing * torch.where(real, uniform, 0.0).sum() / tokens

    def extra_repr(self) -> str:
        return f"label_smoothing={self.label_smoothing:g}"
