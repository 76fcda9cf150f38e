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
terms, so it is finite exactly when every weighted and raw term is): cheap on a CPU,
one small sync on a GPU. Validation and test are checked once an epoch, from their means.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import lightning as L
import torch
from torch import Tensor

from objectives.errors import ConfigError, NonFiniteObjective

log = logging.getLogger(__name__)

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


class NonFiniteGuard:
    """Applies the policy: `step_is_bad` decides (together on every process), `on_bad` stops
    with the message or warns once; `skipped` counts the steps skipped this epoch."""

    def __init__(self, policy: str = "stop") -> None:
        self.policy = check_policy(policy)
        self.skipped = 0  # this epoch's, logged and reset at its end
        self.skipped_in_fit = 0
        self._warned = False

    def step_is_bad(self, trainer: L.Trainer, total: Tensor) -> bool:
        """Whether J is NaN/±Inf: exactly when any term, weighted or raw, is (J sums the
        weighted terms, each a finite weight times its raw value), so one value is read."""
        bad = not bool(total.isfinite())
        if trainer.world_size > 1:  # every rank must stop or skip together
            return trainer.strategy.reduce_boolean_decision(bad, all=False)
        return bad

    def on_bad(self, trainer: L.Trainer, names: Sequence[str], values: Tensor, stage: str) -> None:
        """Stop with a message naming the bad terms (`stop`), or warn once (`warn`)."""
        where = describe(names, values, stage, trainer.global_step, trainer.current_epoch)
        if self.policy != "stop":
            if not self._warned:
                note = f"task.nonfinite={self.policy}: going on"
                log.warning("non-finite objective at %s (%s)", where, note)
                self._warned = True
            return
        last = newest_checkpoint(trainer)
        kept = f"last good checkpoint: {last}" if last else "no checkpoint was written yet"
        raise NonFiniteObjective(
            f"non-finite objective at {where}; {kept}. Lower optimizer.lr, check the data "
            "for NaN, or skip such steps with task.nonfinite=skip"
        )


def newest_checkpoint(trainer: L.Trainer) -> str | None:
    """The checkpoint file written last by any checkpoint callback (None before the first)."""
    paths = {
        path
        for callback in trainer.checkpoint_callbacks
        for path in (callback.best_model_path, callback.last_model_path)
        if path and Path(path).is_file()
    }
    return max(paths, key=lambda p: Path(p).stat().st_mtime_ns, default=None)
