"""Terms and callbacks for forcing failures the non-finite guard must handle."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import lightning as L
import torch
from torch import Tensor

CALLS = {"n": 0}


def nan_on_calls(
    params: Sequence[Tensor],
    first: int,
    last: int | None = None,
    rank: int | None = None,
    poison_gradients: bool = False,
) -> Tensor:
    """0·Σθ, or NaN on training calls first..last (1-based, counted from the last `CALLS`
    reset; calls without gradients, i.e. validation and start-up checks, are not counted).
    `rank`: only on that process. `poison_gradients`: the gradients turn NaN too (NaN·Σθ),
    as after an overflow, instead of staying finite (0·Σθ + NaN)."""
    if torch.is_grad_enabled():
        CALLS["n"] += 1
    total = sum(p.sum() for p in params)
    bad = first <= CALLS["n"] and (last is None or CALLS["n"] <= last)
    if rank is not None:
        here = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
        bad = bad and here == rank
    if not bad:
        return total * 0.0
    return total * float("nan") if poison_gradients else total * 0.0 + float("nan")


class SaveWeightsAtEnd(L.Callback):
    """Writes each process's final weights to `<folder>/weights_rank<k>.json`."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        weights = {k: v.tolist() for k, v in pl_module.model.state_dict().items()}
        path = self.folder / f"weights_rank{trainer.global_rank}.json"
        path.write_text(json.dumps(weights))
