"""Argument and input checks: each failure is one ConfigError line that names the setting
(`augment.crop.scale`) and says what would be accepted."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from torch import Tensor

from objectives.errors import ConfigError

PADDINGS = ("zeros", "border", "reflection")


def show(value: Any) -> str:
    """A value as the user typed it: lists (also OmegaConf's and tuples) as `[a, b]`."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        return "[" + ", ".join(show(item) for item in value) + "]"
    return repr(value) if isinstance(value, str) else str(value)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def number(value: Any, setting: str, low: float = -math.inf, what: str = "a number") -> float:
    """A finite number ≥ `low`."""
    if not is_number(value) or value < low:
        raise ConfigError(f"{setting} must be {what}, got {show(value)}")
    return float(value)


def probability(value: Any, setting: str) -> float:
    if not is_number(value) or not 0 <= value <= 1:
        raise ConfigError(f"{setting} must be a probability in [0, 1], got {show(value)}")
    return float(value)


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


def padding(value: Any, setting: str) -> str:
    if value not in PADDINGS:
        raise ConfigError(f"{setting} must be one of {'|'.join(PADDINGS)}, got {show(value)}")
    return str(value)


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
