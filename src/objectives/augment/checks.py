"""Argument and input checks: each failure is one ConfigError line that names the setting
(`augment.crop.scale`) and says what would be accepted.

The ones augmentations alone need (pairs, boxes, paddings, image batches), on top of the
project's `objectives.checks`, whose `number`, `is_number` and `show` the ops reach here."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from torch import Tensor

from objectives.checks import is_number, number, one_of, show
from objectives.errors import ConfigError

PADDINGS = ("zeros", "border", "reflection")


def probability(value: Any, setting: str) -> float:
    return number(value, setting, low=0, high=1, what="a probability in [0, 1]")


def pair(
    value: Any,
    setting: str,
    what: str,
    inside: tuple[float, float] = (-math.inf, math.inf),
    open_low: bool = False,
    example: str = "",
) -> tuple[float, float]:
    """Two numbers low ≤ high within `inside` ((low, high] when `open_low`)."""
    ok = (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == 2
        and all(is_number(v) for v in value)
    )
    if ok:
        low, high = float(value[0]), float(value[1])
        above = low > inside[0] if open_low else low >= inside[0]
        ok = above and high <= inside[1] and low <= high
    if not ok:
        hint = f", e.g. {setting}={example}" if example else ""
        raise ConfigError(f"{setting} must be {what}, got {show(value)}{hint}")
    return low, high


def box(
    scale: Any, ratio: Any, name: str, area: str, examples: tuple[str, str]
) -> tuple[tuple[float, float], tuple[float, float]]:
    """A box's `scale`, the share of the image's area it covers (`area`: kept, erased), and
    its `ratio`, width/height: each two numbers low <= high, scale in (0, 1], ratio > 0."""
    return (
        pair(scale, f"{name}.scale", f"two numbers in (0, 1], low <= high (the area {area})",
             (0.0, 1.0), open_low=True, example=examples[0]),
        pair(ratio, f"{name}.ratio", "two positive numbers low <= high (box width/height)",
             (0.0, math.inf), open_low=True, example=examples[1]),
    )  # fmt: skip


def padding(value: Any, setting: str) -> str:
    return str(one_of(value, setting, PADDINGS))


def images(x: Any, name: str) -> None:
    """Image augmentations need a float batch (N, C, H, W)."""
    if not isinstance(x, Tensor):
        raise ConfigError(f"{name} needs a tensor of images (N, C, H, W), got {type(x).__name__}")
    if x.ndim != 4:
        kind = "a tabular batch" if x.ndim == 2 else "a batch"
        raise ConfigError(
            f"{name} needs images (N, C, H, W), got {kind} of shape {tuple(x.shape)}: "
            "augmentations need image data (data=digits|mnist|blobs_images); "
            "for other data use augment=none"
        )
    floating(x, name)


def floating(x: Any, name: str) -> None:
    if not isinstance(x, Tensor) or x.ndim == 0:
        raise ConfigError(f"{name} needs a batch tensor (N, ...), got {show(x)}")
    if not x.is_floating_point():
        raise ConfigError(
            f"{name} needs float inputs, got {x.dtype}: convert them first, e.g. x.float() / 255"
        )
