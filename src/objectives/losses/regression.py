"""Regression losses missing from torch.nn: log-cosh and quantile (pinball)."""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

from objectives import checks


def log_cosh(pred: Tensor, target: Tensor) -> Tensor:
    """mean(log(cosh(ŷ − y))): ≈ e²/2 for small errors, ≈ |e| − ln 2 for large ones.

    Written as |e| + softplus(−2|e|) − ln 2, which never overflows (cosh does for |e| > 89
    in float32).
    """
    error = (pred - target).abs()
    return (error + F.softplus(-2.0 * error) - math.log(2.0)).mean()


class QuantileLoss(nn.Module):
    """Pinball loss mean(max(q·e, (q−1)·e)) with e = y − ŷ; its minimiser is the q-quantile.

    q = 0.5 gives half the mean absolute error; q = 0.9 punishes under-prediction 9× more
    than over-prediction. A module (not a function) so a bad `q` fails at start-up.
    """

    def __init__(self, q: float = 0.5) -> None:
        super().__init__()
        self.q = checks.number(
            q, "loss.quantile.fn.q", low=0, high=1, low_open=True, high_open=True, example=0.9
        )

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        error = target - pred
        return (error * self.q).maximum(error * (self.q - 1.0)).mean()

    def extra_repr(self) -> str:
        return f"q={self.q:g}"
