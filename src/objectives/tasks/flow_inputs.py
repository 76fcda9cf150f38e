"""Images into a flow: uniform dequantisation, then a logit transform.

Pixels of L levels, x = k/(L − 1), are a discrete variable: a density on them can grow
without bound. Adding uniform noise, x̃ = (k + u)/L with u ~ U(0, 1)^D, spreads each level
over its own cell of [0, 1], and a density p on x̃ bounds the discrete likelihood:
−log P(k) ≤ −log p(x̃) + D ln L (metrics/flow.py's bits per dimension). The logit of
s = α + (1 − 2α) x̃ then takes [0, 1] to the whole line, where the flow's couplings and
its normal prior live; its log-det, Σ [ln(1 − 2α) − ln s − ln(1 − s)], is part of
log|det ∂f/∂x̃|, so the task's NLL is that of x̃ on [0, 1]^D.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from objectives import checks
from objectives.errors import ConfigError


class Dequantization:
    """`levels` L ≥ 2 pixel values in [0, 1]; `alpha` α keeps the logit finite."""

    def __init__(self, levels: int, alpha: float = 0.05) -> None:
        self.levels = checks.positive_int(levels, "task.dequantize", example=17)
        if self.levels < 2:
            raise ConfigError(
                f"task.dequantize={levels}: pixels of one level carry no information; give "
                "the data's number of levels (digits: 17, 8-bit images: 256) or null"
            )
        self.alpha = checks.number(
            alpha, "task.logit_alpha", low=0, high=0.5, high_open=True, example=0.05
        )

    def check(self, x: Tensor, where: str) -> None:
        """Refuse inputs off the grid {0, 1/(L−1), …, 1}: dequantising them is meaningless."""
        scaled = x.double() * (self.levels - 1)
        off = (scaled - scaled.round()).abs().max() if len(x) else 0.0
        low, high = (float(v) for v in torch.aminmax(x.double())) if len(x) else (0.0, 0.0)
        if low < 0 or high > 1 or off > 1e-4:
            raise ConfigError(
                f"task.dequantize={self.levels} needs pixels k/{self.levels - 1} in [0, 1], but "
                f"{where} ranges over [{low:.4g}, {high:.4g}] and lies up to {float(off):.3g} "
                f"steps off that grid; give the data's levels, or task.dequantize=null"
            )

    def __call__(self, x: Tensor, noise: Tensor | float | None = None) -> tuple[Tensor, Tensor]:
        """y = logit(α + (1 − 2α)x̃) of flat rows, and the log-det of x ↦ y a row, (N,).
        `noise` is u (default: uniform draws; 0.5 puts each pixel at its cell's centre)."""
        u = torch.rand_like(x) if noise is None else noise
        x_tilde = (x * (self.levels - 1) + u) / self.levels
        s = self.alpha + (1 - 2 * self.alpha) * x_tilde
        y = s.log() - (-s).log1p()
        log_det = (math.log(1 - 2 * self.alpha) - s.log() - (-s).log1p()).sum(1)
        return y, log_det

    def inverse(self, y: Tensor) -> Tensor:
        """x̃ ∈ [0, 1] of flow-space rows y (samples)."""
        return ((torch.sigmoid(y) - self.alpha) / (1 - 2 * self.alpha)).clamp(0, 1)
