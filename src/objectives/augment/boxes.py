"""Random boxes of a given area and aspect ratio that fit in the image (crop and erasing).

torchvision draws an area and a ratio and retries until the box fits. Here each image draws
its area fraction `s` and then its ratio from the part of the ratio range where a box of area
`s` fits, so the area is exactly `s` and nothing is redrawn (one vectorised pass).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def box_fractions(
    s: Tensor, u: Tensor, ratio: tuple[float, float], height: int, width: int
) -> tuple[Tensor, Tensor]:
    """Height and width of boxes as fractions of the image's, for area fractions `s` (N,)
    and uniforms `u` (N,); `ratio` bounds the box's width/height in pixels.

    A box of area s·H·W and ratio r is w = √(s·H·W·r) by h = √(s·H·W/r) pixels; it fits when
    s·W/H ≤ r ≤ W/(s·H). Where no ratio of `ratio` fits, the nearest is clipped to the image.
    """
    aspect = width / height
    low = torch.clamp(torch.log(s * aspect), min=math.log(ratio[0]))
    high = torch.clamp(torch.log(aspect / s), max=math.log(ratio[1]))
    r = torch.exp(low + (torch.maximum(high, low) - low) * u)
    w = torch.sqrt(s * r / aspect).clamp(max=1.0)
    h = torch.sqrt(s * aspect / r).clamp(max=1.0)
    return h, w
