"""Strings of handwritten digits: scikit-learn's bundled 8×8 digits side by side.

Each string has 1 to `max_digits` digits (all `max_digits` when `min_digits` equals it: the
fixed-length variant for per-position cross-entropy), drawn as one 8-pixel-high strip, 8
columns a digit, padded with blank columns to the longest. The digit images are split into
train/val/test pools first, so validation and test strings are made of images the model
never saw, and strings differ in length within every batch. Nothing is downloaded.
"""

from __future__ import annotations

import torch

from objectives import checks
from objectives.data.images import digits
from objectives.data.sequence_data import Sequences
from objectives.data.splits import split_indices
from objectives.errors import ConfigError
from objectives.losses.sequence import PAD

DIGIT_WIDTH = 8


def digit_strings(
    n_train: int = 4000,
    n_val: int = 500,
    n_test: int = 500,
    min_digits: int = 1,
    max_digits: int = 5,
    image_val_fraction: float = 0.15,
    image_test_fraction: float = 0.15,
    seed: int = 0,
) -> Sequences:
    """Inputs (N, 1, 8, 8·max_digits) in [0, 1], input lengths 8·digits (columns), targets
    (N, max_digits): digit + 1 (0 is CTC's blank), padded with `PAD`."""
    counts = {
        key: checks.positive_int(n, f"data.source.n_{key}", example=500)
        for key, n in (("train", n_train), ("val", n_val), ("test", n_test))
    }
    low = checks.positive_int(min_digits, "data.source.min_digits", example=1)
    high = checks.positive_int(max_digits, "data.source.max_digits", example=5)
    if low > high:
        raise ConfigError(
            f"data.source.min_digits={low} is more than data.source.max_digits={high}; "
            f"e.g. data.source.min_digits=1"
        )
    images, labels = digits()
    fractions = {"val": image_val_fraction, "test": image_test_fraction}
    pools = split_indices(len(images), fractions, seed, labels)
    generator = torch.Generator().manual_seed(seed + 1)
    splits = {}
    for key, n in counts.items():
        pool = pools[key]
        lengths = torch.randint(low, high + 1, (n,), generator=generator)
        picks = pool[torch.randint(len(pool), (n, high), generator=generator)]
        real = torch.arange(high) < lengths[:, None]  # (n, max_digits)
        strips = images[picks] * real[:, :, None, None, None]  # (n, max_digits, 1, 8, 8)
        inputs = strips.permute(0, 2, 3, 1, 4).reshape(n, 1, DIGIT_WIDTH, high * DIGIT_WIDTH)
        targets = torch.where(real, labels[picks] + 1, PAD)
        splits[key] = (inputs.contiguous(), lengths * DIGIT_WIDTH, targets)
    return Sequences(splits, num_tokens=11, vocabulary=tuple("0123456789"))
