"""Embedded regression data: nothing is downloaded.

Each source returns `(inputs, targets)` as float32 tensors of shape (N, D) and (N, 1).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def line(
    n: int = 100,
    low: float = 0.0,
    high: float = 10.0,
    slope: float = 2.0,
    intercept: float = 1.0,
    noise: float = 1.0,
    seed: int = 42,
) -> tuple[Tensor, Tensor]:
    """The seed's line: x evenly spaced on [low, high], y = slope·x + intercept + N(0, noise²)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.linspace(low, high, n).unsqueeze(1)
    y = slope * x + intercept + noise * torch.randn(n, 1, generator=generator)
    return x, y


def linear_features(
    n: int = 1000,
    weights: Sequence[float] = (2.0, -1.5, 0.8, -0.3, 1.2),
    noise: float = 0.1,
    seed: int = 42,
) -> tuple[Tensor, Tensor]:
    """The seed's 5-feature regression: X ~ N(0, I), y = X·w + N(0, noise²)."""
    generator = torch.Generator().manual_seed(seed)
    w = torch.tensor(weights, dtype=torch.float32)
    x = torch.randn(n, len(w), generator=generator)
    y = x @ w + noise * torch.randn(n, generator=generator)
    return x, y.unsqueeze(1)


def diabetes() -> tuple[Tensor, Tensor]:
    """scikit-learn's bundled diabetes data (442 patients, 10 features, disease progression)."""
    from sklearn.datasets import load_diabetes  # imported here: sklearn is slow to import

    x, y = load_diabetes(return_X_y=True)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32).unsqueeze(1)
