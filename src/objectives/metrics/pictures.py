"""Images tiled into one picture, for TensorBoard's `add_image`: generated samples are
easier to judge side by side than one by one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from objectives.errors import ConfigError


def image_grid(
    images: Tensor,
    nrow: int = 8,
    padding: int = 1,
    pad_value: float = 0.5,
    scale: int = 1,
    value_range: tuple[float, float] = (0.0, 1.0),
) -> Tensor:
    """Images (M, C, H, W) tiled `nrow` to a row: a float (C, H', W') tensor in [0, 1] on
    the CPU, for `SummaryWriter.add_image` (dataformats "CHW").

    Values are mapped from `value_range` to [0, 1] and clamped (pass (−1, 1) for a tanh
    generator); each image is enlarged `scale` times by pixel repetition (8×8 digits are
    tiny in TensorBoard: scale=4 helps); `padding` pixels of `pad_value` separate the
    tiles and fill the unused ones of the last row.
    """
    if images.ndim != 4 or len(images) == 0:
        raise ConfigError(f"image_grid needs images (M, C, H, W), got {tuple(images.shape)}")
    if nrow < 1 or scale < 1 or padding < 0:
        raise ConfigError("image_grid needs nrow ≥ 1, scale ≥ 1, padding ≥ 0")
    low, high = value_range
    x = ((images.detach().float().cpu() - low) / (high - low)).clamp(0.0, 1.0)
    if scale > 1:
        x = x.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)
    m, c, h, w = x.shape
    cols = min(nrow, m)
    rows = -(-m // cols)
    tiles = torch.full((rows * cols, c, h + padding, w + padding), pad_value)
    tiles[:m, :, padding:, padding:] = x  # each tile: padding on its top and left
    grid = tiles.reshape(rows, cols, c, h + padding, w + padding)
    grid = grid.permute(2, 0, 3, 1, 4).reshape(c, rows * (h + padding), cols * (w + padding))
    return F.pad(grid, (0, padding, 0, padding), value=pad_value)  # close the right and bottom
