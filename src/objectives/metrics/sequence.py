"""Metrics of sequence predictions, from torchmetrics where it has them.

Each metric's `update` takes the step's outputs as one mapping (`logits`, `targets`,
`input_lengths`, and `decoded`: the greedy decoding, (N, L') padded with `PAD`), so metrics
that read different outputs share one `MetricCollection`. Every one is exact over a whole
split: it sums over tokens or sequences and divides once at the end, across processes too.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Metric, SumMetric
from torchmetrics.text import CharErrorRate, Perplexity

from objectives.losses.sequence import PAD, ctc_needed_steps, real_tokens

Outputs = Mapping[str, Tensor]


def ctc_greedy_decode(logits: Tensor, lengths: Tensor, blank: int = 0) -> Tensor:
    """The best path's labels: argmax a step, repeats merged, blanks dropped, only the first
    `lengths` steps; (N, T) padded with `PAD`. On the device, without a sync."""
    best = logits.argmax(-1)
    steps = best.shape[1]
    keep = best != blank
    keep[:, 1:] &= best[:, 1:] != best[:, :-1]
    keep &= torch.arange(steps, device=best.device) < lengths[:, None]
    place = torch.where(keep, keep.cumsum(1) - 1, steps)  # dropped labels go to a spare column
    decoded = torch.full((len(best), steps + 1), PAD, dtype=best.dtype, device=best.device)
    return decoded.scatter_(1, place, best)[:, :steps]


def argmax_decode(logits: Tensor, targets: Tensor) -> Tensor:
    """The most likely class at every target position, `PAD` where the target is padding."""
    return torch.where(targets != PAD, logits.argmax(-1), PAD)


def as_text(rows: Tensor) -> list[str]:
    """Token ids as strings of one character a token (for torchmetrics' text metrics)."""
    return ["".join(chr(0x100 + t) for t in row if t != PAD) for row in rows.tolist()]


class CharacterErrorRate(CharErrorRate):
    """torchmetrics' CER (edits / target characters over the split) of `decoded`."""

    def update(self, outputs: Outputs) -> None:  # type: ignore[override]
        super().update(as_text(outputs["decoded"]), as_text(outputs["targets"]))


class ExactMatch(Metric):
    """The share of sequences decoded exactly right."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("correct", default=torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0), dist_reduce_fx="sum")

    def update(self, outputs: Outputs) -> None:
        decoded, targets = outputs["decoded"], outputs["targets"]
        width = max(decoded.shape[1], targets.shape[1])
        decoded, targets = (F.pad(t, (0, width - t.shape[1]), value=PAD)
                            for t in (decoded, targets))  # fmt: skip
        self.correct += (decoded == targets).all(1).sum()
        self.total += len(targets)

    def compute(self) -> Tensor:
        return self.correct.float() / self.total.clamp_min(1)


class TokenPerplexity(Perplexity):
    """torchmetrics' perplexity exp(mean −log p of the real target tokens); padding ignored.
    Without label smoothing, log(perplexity) is the token cross-entropy over the split."""

    def __init__(self, **kwargs) -> None:
        super().__init__(ignore_index=PAD, **kwargs)

    def update(self, outputs: Outputs) -> None:  # type: ignore[override]
        super().update(outputs["logits"].float(), outputs["targets"])


class NatsAboveEntropy(TokenPerplexity):
    """Mean −log p of the real target tokens minus the data's entropy rate H: 0 for a model
    that predicts as well as the process that made the data; a finite split may land a
    little below (its own tokens' entropy differs from H by chance)."""

    def __init__(self, entropy_rate: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.entropy_rate = float(entropy_rate)

    def compute(self) -> Tensor:
        return self.total_log_probs / self.count - self.entropy_rate


class UnalignableCount(SumMetric):
    """How many sequences CTC cannot align (fewer time steps than labels plus the blanks
    between repeats): their loss is ∞, or 0 with `zero_infinity`, and they teach nothing."""

    def update(self, outputs: Outputs) -> None:  # type: ignore[override]
        targets = outputs["targets"]
        needed = ctc_needed_steps(targets, real_tokens(targets))
        super().update((outputs["input_lengths"] < needed).sum())
