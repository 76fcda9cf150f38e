"""What happens when the objective or one of its terms becomes NaN or ±Inf.

The objective knows its terms, so the message can say which one went bad, at which
step and in which stage, instead of a loss curve that silently turns into NaN. Three
policies (`task.nonfinite=`):

- `stop` (default): raise `NonFiniteObjective` naming that step, at the next check (below),
  before any later checkpoint is written, so the last checkpoint on disk is the last good
  one; the command exits non-zero (inside a sweep, the job is marked failed).
- `skip`: leave that step's update out (weights and optimizer state as they were), count
  it, log `train_epoch/skipped_steps`, and go on.
- `warn`: log a warning once and go on (the old behaviour, for debugging).

No check reads the device on every step (on a GPU each read waits for every queued
kernel). J sums the weighted terms, so it is finite exactly when every weighted and raw
term is; only J is tested:
- `stop`/`warn`: each training step's values are kept (a reference, no device work) and
  tested together at the next check: the logging interval (`trainer.log_every_n_steps`),
  every epoch end, before a checkpoint is written and at the end of training. The message
  names the first bad step; no checkpoint is written after it, so the newest one on disk
  is the last good one.
- `skip`: the flag stays on the device; the optimizer step runs and is undone where the
  flag is set (tasks/masked_update.py); the skipped steps are counted on the device.
With several processes the flag (skip) or the first bad step (stop, warn) is shared, so
every rank skips or stops together and the weights stay equal. Validation and test are
checked once an epoch, from their means.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path

import lightning as L
import torch
from torch import Tensor
from torch.optim import Optimizer

from objectives.errors import ConfigError, NonFiniteObjective
from objectives.tasks.masked_update import undone_if

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
    """Applies the policy. `watch` takes each training step's values (no host read),
    `check` reads them at the project's check points and stops or warns (`on_bad`);
    `undone_if_bad` wraps an optimizer step under `skip`. `skipped` counts the steps skipped
    this epoch (read at its end), `skipped_in_fit` those of the whole fit."""

    def __init__(self, policy: str = "stop", names: Mapping[str, Sequence[str]] | None = None):
        self.policy = check_policy(policy)
        self.names = {p: list(n) for p, n in (names or {"": ["objective"]}).items()}
        self.skipped = 0  # this epoch's, logged and reset at its end
        self.skipped_in_fit = 0
        self._warned = False
        # stop/warn: (player, step, epoch, stacked values) of the steps since the last check
        self._pending: list[tuple[str, int, int, Tensor]] = []
        # skip: the flag of the optimizer step under way, and the skipped steps not yet read
        self._step_bad: Tensor | None = None
        self._skipped_on_device: Tensor | None = None

    # -- every training step, on the device ---------------------------------------------------
    def watch(self, trainer: L.Trainer, stacked: Tensor, player: str, step: int) -> Tensor | None:
        """Take one training step's [J, terms..., raws...]; under `skip` return the device flag
        (True: leave these values out), shared by every rank."""
        if self.policy != "skip":
            self._pending.append((player, step, trainer.current_epoch, stacked))
            return None
        bad = ~torch.isfinite(stacked[0])
        if trainer.world_size > 1:  # one small all-reduce on the device: every rank skips
            bad = trainer.strategy.reduce(bad.float(), reduce_op="sum") > 0
        self._step_bad = bad if self._step_bad is None else self._step_bad | bad
        count = self._skipped_on_device
        self._skipped_on_device = bad.long() if count is None else count + bad
        return bad

    def undone_if_bad(self, optimizer: Optimizer, extra: Sequence[Tensor] = ()):
        """The context an optimizer step runs in: undone on the device if any step recorded
        since the last update was bad (`skip`); nothing otherwise."""
        if self.policy != "skip":
            return nullcontext()
        return undone_if(self._take_step_flag, optimizer, extra)

    def _take_step_flag(self) -> Tensor | None:
        flag, self._step_bad = self._step_bad, None
        return flag

    # -- the check points, on the host ----------------------------------------------------------
    def check(self, trainer: L.Trainer) -> None:
        """Read what the steps since the last check left: count skipped steps (`skip`), or
        stop/warn at the first bad one. Every rank calls it at the same points."""
        if self.policy == "skip":
            count, self._skipped_on_device = self._skipped_on_device, None
            if count is not None:
                n = int(count.item())
                self.skipped += n
                self.skipped_in_fit += n
            return
        pending, self._pending = self._pending, []
        if not pending and trainer.world_size == 1:
            return
        first = self._first_bad(trainer, pending)
        if first is not None:
            player, step, epoch, values = first
            self.on_bad(trainer, self.names[player], values, "train", step, epoch)

    def _first_bad(
        self, trainer: L.Trainer, pending: list[tuple[str, int, int, Tensor]]
    ) -> tuple[str, int, int, Tensor] | None:
        """The earliest pending step whose J is not finite, on any rank (one host read when
        all are finite)."""
        first = first_non_finite(pending)
        if trainer.world_size > 1:
            return self._earliest_of_all_ranks(trainer, first)
        return first

    def _earliest_of_all_ranks(
        self, trainer: L.Trainer, first: tuple[str, int, int, Tensor] | None
    ) -> tuple[str, int, int, Tensor] | None:
        """Each rank offers its first bad step as one row [found, step, epoch, player,
        values...]; one all-gather, then every rank takes the earliest (lowest rank on a tie)."""
        players = list(self.names)
        width = max(len(n) for n in self.names.values())
        row = torch.zeros(4 + width, device=trainer.strategy.root_device)
        if first is not None:
            player, step, epoch, values = first
            row[:4] = torch.tensor([1.0, step, epoch, players.index(player)])
            row[4 : 4 + len(values)] = values.to(row)
        rows = trainer.strategy.all_gather(row).reshape(-1, 4 + width).cpu()
        found = [r for r in rows.tolist() if r[0] == 1.0]
        if not found:
            return None
        _, step, epoch, index, *values = min(found, key=lambda r: r[1])
        player = players[int(index)]
        return player, int(step), int(epoch), torch.tensor(values[: len(self.names[player])])

    def on_bad(
        self,
        trainer: L.Trainer,
        names: Sequence[str],
        values: Tensor,
        stage: str,
        step: int | None = None,
        epoch: int | None = None,
    ) -> None:
        """Stop with a message naming the bad terms (`stop`), or warn once (`warn`)."""
        step = trainer.global_step if step is None else step
        epoch = trainer.current_epoch if epoch is None else epoch
        where = describe(names, values, stage, step, epoch)
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


def first_non_finite(
    pending: list[tuple[str, int, int, Tensor]],
) -> tuple[str, int, int, Tensor] | None:
    """The first of the (player, step, epoch, values) entries whose J (values[0]) is not
    finite; one host read for all of them."""
    if not pending:
        return None
    bad = ~torch.isfinite(torch.stack([values[0] for *_, values in pending]))
    if not bool(bad.any()):
        return None
    return pending[int(bad.nonzero()[0])]


def newest_checkpoint(trainer: L.Trainer) -> str | None:
    """The checkpoint file written last by any checkpoint callback (None before the first)."""
    paths = {
        path
        for callback in trainer.checkpoint_callbacks
        for path in (callback.best_model_path, callback.last_model_path)
        if path and Path(path).is_file()
    }
    return max(paths, key=lambda p: Path(p).stat().st_mtime_ns, default=None)
