"""A regularizer that turns NaN on chosen calls: the forced failure the guard must name."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

CALLS = {"n": 0}


def nan_on_calls(params: Sequence[Tensor], first: int, last: int | None = None) -> Tensor:
    """0·Σθ, or NaN on training calls first..last (1-based, counted from the last `CALLS`
    reset; calls without gradients, i.e. validation and start-up checks, are not counted)."""
    import torch

    if torch.is_grad_enabled():
        CALLS["n"] += 1
    value = sum(p.sum() for p in params) * 0.0
    bad = first <= CALLS["n"] and (last is None or CALLS["n"] <= last)
    return value + float("nan") if bad else value
