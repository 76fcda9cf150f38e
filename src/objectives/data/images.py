"""Embedded image classification data: nothing is downloaded.

Each source returns `(images, labels)`: float32 (N, 1, H, W) and int64 (N,).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from objectives.errors import ConfigError


def digits(classes: Sequence[int] | None = None) -> tuple[Tensor, Tensor]:
    """scikit-learn's bundled 1,797 real 8×8 handwritten digits, scaled to [0, 1].

    `classes` keeps only those digits, relabelled 0..k−1 in the order given
    (`classes=[3, 8]` makes a binary task: 3 → 0, 8 → 1).
    """
    from sklearn.datasets import load_digits  # imported here: sklearn is slow to import

    x, y = load_digits(return_X_y=True)
    images = torch.tensor(x, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
    labels = torch.tensor(y, dtype=torch.int64)
    if classes is None:
        return images, labels
    classes = [int(c) for c in classes]
    if len(set(classes)) < 2 or not all(0 <= c <= 9 for c in classes):
        raise ConfigError(
            f"data.source.classes must name at least two distinct digits 0-9, got {classes}"
        )
    keep = torch.isin(labels, torch.tensor(classes))
    relabel = torch.full((10,), -1, dtype=torch.int64)
    relabel[torch.tensor(classes)] = torch.arange(len(classes))
    return images[keep], relabel[labels[keep]]


def blobs_images(
    n: int = 1000,
    size: int = 28,
    threshold: float = 0.2,
    brightness: float = 0.5,
    seed: int = 42,
) -> tuple[Tensor, Tensor]:
    """The seed's synthetic images labelled by their mean: 1 if mean > t, 0 if < −t, else 2.

    The seed draws pure N(0, 1) pixels, whose mean over 28×28 has a standard deviation
    of 1/28 ≈ 0.036, so every image would be class 2. Each image here also gets a
    brightness offset ~ U(−`brightness`, `brightness`), which spreads the means over all
    three classes (about 30/30/40 % with the defaults).
    """
    generator = torch.Generator().manual_seed(seed)
    offset = (torch.rand(n, 1, 1, 1, generator=generator) * 2 - 1) * brightness
    images = torch.randn(n, 1, size, size, generator=generator) + offset
    means = images.mean(dim=(1, 2, 3))
    labels = torch.full((n,), 2, dtype=torch.int64)
    labels[means > threshold] = 1
    labels[means < -threshold] = 0
    return images, labels
