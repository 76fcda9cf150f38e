"""Additive Gaussian noise: the one augmentation that needs no images, so it also works on
tabular batches (N, F) or any other shape with the batch first."""

from __future__ import annotations

import torch
from torch import Tensor

from objectives.augment import checks
from objectives.augment.base import AugmentOp


class GaussianNoise(AugmentOp):
    """x + std·ε, ε ~ N(0, 1) per value; each sample is noised with probability `p`.

    Values are not clipped: on [0, 1] digits, noise 0.1 leaves the strokes (≈ 1) far above
    the background (≈ 0).
    """

    def __init__(
        self,
        std: float = 0.1,
        p: float = 1.0,
        *,
        name: str | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(p, name=name, generator=generator)
        self.std = checks.number(std, f"{self.name}.std", low=0)

    def forward(self, x: Tensor) -> Tensor:
        checks.floating(x, self.name)
        if self.p == 0 or self.std == 0 or len(x) == 0:
            return x
        noise = self.normal(x) * self.std
        chosen = self.chosen(self.uniform(x, 1)[:, 0])
        if chosen is not None:
            noise = noise * chosen.view(-1, *([1] * (x.ndim - 1))).to(x.dtype)
        return x + noise

    def extra_repr(self) -> str:
        return f"std={self.std}, p={self.p}"
