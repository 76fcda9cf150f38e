"""What happens when the objective or one of its terms becomes NaN or ±Inf.

The objective knows its terms, so the message can say which one went bad, at which
step and in which stage, instead of a loss curve that silently turns into NaN. Three
policies (`task.nonfinite=`):

- `stop` (default): raise `NonFiniteObjective` at that step. Training ends there, before
  the epoch's checkpoint is written, so the last checkpoint on disk is the last good
  one; the command exits non-zero (inside a sweep, the job is marked failed).
- `skip`: skip that step's backward and optimizer step, count it, log
  `train_epoch/skipped_steps`, and go on.
- `warn`: log a warning once and go on (the old behaviour, for debugging).

The check reads one boolean a training step, whether J is finite (J sums the weighted
terms, so it is finite exactly when every weighted and raw term is): a few µs on a CPU,
one small sync on a GPU. Validation and test are checked once an epoch, from their means.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from objectives.errors import ConfigError

POLICIES = ("stop", "skip", "warn")


def check_policy(policy: str) -> str:
    if policy not in POLICIES:
        raise ConfigError(f"task.nonfinite={policy!r} is not a policy; use {'|'.join(POLICIES)}")
    return policy


def non_finite(values: Tensor) -> Tensor:
    """A 0-d bool tensor on the values' device: does any of them fail to be finite?"""
    return ~torch.isfinite(values).all()


def describe(names: Sequence[str], values: Tensor, stage: str, step: int, epoch: int) -> str:
    """`train step 57 (epoch 3): objective=nan, raw/mse=inf`: only the non-finite entries, raw
    values first since a weighted term is only as bad as its raw value."""
    host = values.detach().float().cpu().tolist()
    bad = [(n, v) for n, v in zip(names, host, strict=True) if not torch.isfinite(torch.tensor(v))]
    bad.sort(key=lambda item: (not item[0].startswith("raw/"), item[0] == "objective"))
    where = f"{stage} step {step} (epoch {epoch})" if stage == "train" else f"{stage} epoch {epoch}"
    return f"{where}: " + ", ".join(f"{n}={v}" for n, v in bad)
