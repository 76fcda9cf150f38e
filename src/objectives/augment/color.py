"""Colour jitter with torchvision's formulas, for float images in [0, 1], batched: every
image gets its own factors, drawn in one call, and each adjustment is one broadcast
expression over the batch."""

from __future__ import annotations

import torch
from torch import Tensor

from objectives.augment import checks
from objectives.augment.base import AugmentOp
from objectives.errors import ConfigError

# ITU-R BT.601 luma, as PIL's convert("L") (torchvision's tensor path uses 0.2989 for red)
LUMA = (0.299, 0.587, 0.114)


class ColorJitter(AugmentOp):
    """Change brightness, contrast and saturation by random factors, each drawn uniformly
    in [max(0, 1 − s), 1 + s] per image for its strength s (0 leaves that property be),
    with torchvision's `ColorJitter` formulas, each followed by a clamp to [0, 1]:

    - brightness f: f·x (0 is black);
    - contrast f: f·x + (1 − f)·m, m the mean grey level of the image (one number);
    - saturation f: f·x + (1 − f)·grey(x), the grey image 0.299 R + 0.587 G + 0.114 B per
      pixel. A single-channel (grey) image has no saturation: it is left as it is.

    For images in [0, 1] (data.standardize_inputs=false): the clamps would cut standardised
    inputs. Images with 1 or 3 channels (grey or RGB).

    The order is fixed, brightness → contrast → saturation, where torchvision draws a new
    order for every call: one fixed sequence of batch expressions gives every image its own
    factors in three kernels, where per-image orders would need each image's own sequence
    (a loop, or all six orders computed and picked from); a batch-wide random order would
    tie the images of a batch together. The draws stay 4 uniforms per image whatever the
    settings. Hue is not jittered. Images not chosen (probability 1 − p) come back as they
    were, unclamped.
    """

    def __init__(
        self,
        brightness: float = 0.4,
        contrast: float = 0.4,
        saturation: float = 0.4,
        p: float = 1.0,
        *,
        name: str | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(p, name=name, generator=generator)
        strength = "a number ≥ 0 (factors drawn in [max(0, 1 - s), 1 + s])"
        self.brightness, self.contrast, self.saturation = (
            checks.number(value, f"{self.name}.{key}", low=0, what=strength, example=0.4)
            for key, value in
            (("brightness", brightness), ("contrast", contrast), ("saturation", saturation))
        )  # fmt: skip

    def factors(self, x: Tensor) -> Tensor:
        """(N, 3) float32 on x's device: each image's brightness, contrast and saturation
        factors; 1 (the identity) for images not chosen. Draws 4 uniforms per image."""
        factors, chosen = self.draw(x)
        if chosen is None:
            return factors
        return torch.where(chosen[:, None], factors, torch.ones_like(factors))

    def draw(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """The factors (N, 3) of every image, chosen or not, and which are (None: all)."""
        u = self.uniform(x, 4)
        strengths = (self.brightness, self.contrast, self.saturation)
        ranges = [(max(0.0, 1 - s), 1 + s) for s in strengths]  # numbers: no copy to the device
        factors = torch.stack(
            [low + (high - low) * u[:, i] for i, (low, high) in enumerate(ranges)], 1
        )
        return factors, self.chosen(u[:, 3])

    def forward(self, x: Tensor) -> Tensor:
        checks.images(x, self.name)
        if x.shape[1] not in (1, 3):
            raise ConfigError(
                f"{self.name} needs grey or RGB images (1 or 3 channels), got {x.shape[1]} "
                f"channels in a batch of shape {tuple(x.shape)}"
            )
        if self.p == 0 or len(x) == 0:
            return x
        factors, chosen = self.draw(x)
        out = jittered(x, factors)
        # images not chosen come back exactly as they were (not even clamped)
        return out if chosen is None else torch.where(chosen[:, None, None, None], out, x)

    def extra_repr(self) -> str:
        return (
            f"brightness={self.brightness}, contrast={self.contrast}, "
            f"saturation={self.saturation}, p={self.p}"
        )


def grey(x: Tensor) -> Tensor:
    """(N, 1, H, W): the luma of RGB images, or the single channel of grey ones."""
    if x.shape[1] == 1:
        return x
    r, g, b = x.unbind(1)
    return (LUMA[0] * r + LUMA[1] * g + LUMA[2] * b).unsqueeze(1)


def jittered(x: Tensor, factors: Tensor) -> Tensor:
    """`x` (N, C, H, W) with brightness, contrast and saturation changed by `factors` (N, 3),
    in that order, each result clamped to [0, 1]."""
    f = factors.to(x.dtype).view(-1, 3, 1, 1, 1).unbind(1)  # three (N, 1, 1, 1)
    x = (f[0] * x).clamp(0, 1)
    mean = grey(x).mean(dim=(1, 2, 3), keepdim=True)
    x = (f[1] * x + (1 - f[1]) * mean).clamp(0, 1)
    if x.shape[1] == 3:
        x = (f[2] * x + (1 - f[2]) * grey(x)).clamp(0, 1)
    return x
