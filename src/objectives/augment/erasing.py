"""Random erasing (cutout): blank a random rectangle of each image, so the encoder cannot
rely on any one part of it."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from objectives.augment import checks
from objectives.augment.base import AugmentOp
from objectives.augment.boxes import box_fractions


class RandomErasing(AugmentOp):
    """With probability `p`, set a rectangle covering a fraction `scale` of the image (width/
    height in `ratio`, whole pixels, at least 1×1) to `value`, in every channel.

    The rectangles come from one mask (N, 1, H, W) built by broadcasting row and column
    ranges: no loop over images.
    """

    def __init__(
        self,
        p: float = 0.5,
        scale: Sequence[float] = (0.02, 0.2),
        ratio: Sequence[float] = (0.3, 3.3),
        value: float = 0.0,
        *,
        name: str | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(p, name=name, generator=generator)
        self.scale, self.ratio = checks.box(
            scale, ratio, self.name, "erased", examples=("[0.02,0.2]", "[0.3,3.3]")
        )
        self.value = checks.number(value, f"{self.name}.value", what="a number (the fill)")

    def mask(self, x: Tensor) -> Tensor:
        """(N, 1, H, W) bool: the rectangle of each chosen image."""
        n, height, width = x.shape[0], x.shape[-2], x.shape[-1]
        u = self.uniform(x, 5)
        low, high = self.scale
        h, w = box_fractions(low + (high - low) * u[:, 0], u[:, 1], self.ratio, height, width)
        h = torch.round(h * height).clamp(1, height)
        w = torch.round(w * width).clamp(1, width)
        top = torch.minimum(torch.floor(u[:, 2] * (height - h + 1)), height - h)
        left = torch.minimum(torch.floor(u[:, 3] * (width - w + 1)), width - w)
        ys = torch.arange(height, device=x.device, dtype=h.dtype)
        xs = torch.arange(width, device=x.device, dtype=w.dtype)
        in_rows = (ys >= top[:, None]) & (ys < (top + h)[:, None])  # (N, H)
        in_cols = (xs >= left[:, None]) & (xs < (left + w)[:, None])  # (N, W)
        mask = in_rows[:, :, None] & in_cols[:, None, :]
        chosen = self.chosen(u[:, 4])
        if chosen is not None:
            mask = mask & chosen[:, None, None]
        return mask.view(n, 1, height, width)

    def forward(self, x: Tensor) -> Tensor:
        checks.images(x, self.name)
        if self.p == 0 or len(x) == 0:
            return x
        return x.masked_fill(self.mask(x), self.value)

    def extra_repr(self) -> str:
        return f"p={self.p}, scale={self.scale}, ratio={self.ratio}, value={self.value}"
