"""The one place a task hands its objective values to.

Per step, the objective and its terms arrive stacked in one detached vector
(`ObjectiveValue.stacked()`): the non-finite guard keeps it for its next check, the vector
joins its stage's epoch sum (no host-device sync), and every `trainer.log_every_n_steps` steps it
starts an asynchronous copy to the host that reaches the loggers a logging interval later
(tracking/step_values.py). At an epoch's end the sums are reduced across processes once
and go, with the task's torchmetrics, through `self.log`. Tensor-valued metrics (a
confusion matrix) are kept in `figures` for a callback to draw (callbacks/metric_figures.py).

The training epoch's values are written to the loggers here, at the module's
`on_train_epoch_end`, not by Lightning: Lightning writes them only after the checkpoint
callbacks, which save last.ckpt in that same hook once an epoch is validated; a run killed
in between resumed from a checkpoint whose epoch never reached the log. They still go
through `self.log` (logger=False) for the progress bar, early stopping and checkpoints.

Values are kept per objective: one, named "", for most tasks; one a player for tasks with
several (GAN: `gen`, `disc`), whose tags carry the player (`train/disc/objective`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightning as L
from torch import Tensor
from torchmetrics import Metric, MetricCollection

from objectives.objective import Objective, ObjectiveValue
from objectives.objective.tags import (
    SKIPPED_STEPS,
    STAGES,
    epoch_tags,
    step_tags,
    tagged,
    weight_tags,
)
from objectives.tasks.nonfinite import NonFiniteGuard, non_finite
from objectives.tracking.step_values import DeferredStepValues
from objectives.tracking.term_means import TermMeans


class ObjectiveRecorder:
    """Epoch sums and deferred per-step values of each objective, and the guard on them."""

    def __init__(self, objectives: Mapping[str, Objective], nonfinite: str = "stop") -> None:
        self.names = {p: o.stacked_names() for p, o in objectives.items()}
        self.guard = NonFiniteGuard(
            nonfinite, {p: [tagged(p, n) for n in names] for p, names in self.names.items()}
        )
        terms = {p: o.names for p, o in objectives.items()}
        self.means = {(s, p): TermMeans(len(self.names[p])) for s in STAGES for p in terms}
        self.tags = {(s, p): epoch_tags(s, p, terms[p]) for s in STAGES for p in terms}
        self.step_values = {p: DeferredStepValues(step_tags(p, terms[p])) for p in terms}
        # the weight each term trained with (train/weight/<term>), at the same steps
        self.weight_values = {p: DeferredStepValues(weight_tags(p, terms[p])) for p in terms}
        # training steps recorded (skipped ones too: the guard counts those)
        self.updates = 0
        # this epoch's tensor-valued metrics, for a callback to draw: stage → name → (metric, value)
        self.figures: dict[str, dict[str, tuple[Metric, Tensor]]] = {}

    def record(
        self,
        module: L.LightningModule,
        value: ObjectiveValue,
        stage: str,
        batch_size: int | Tensor,
        player: str = "",
        log_step: bool | None = None,
        step: int | None = None,
    ) -> None:
        """Account one step's value, without reading the device. Per-step values go out, and
        the guard checks the steps since its last check, every `log_every_n_steps` optimizer
        steps, or when `log_step` says (a task with its own steps, e.g. the GAN, calls this
        once a player and step)."""
        stacked = value.stacked()
        trainer = module.trainer
        step = module.global_step if step is None else step
        # under nonfinite=skip, a bad step's values stay out of the means (a device flag)
        left_out = self.guard.watch(trainer, stacked, player, step) if stage == "train" else None
        self.means[(stage, player)].update(stacked, batch_size, left_out=left_out)
        if stage != "train":
            return
        self.updates += 1
        due = log_step or (log_step is None and step % trainer.log_every_n_steps == 0)
        if not due:
            return
        self.guard.check(trainer)  # every rank: the decision is shared
        if module.loggers and trainer.is_global_zero:  # rank 0 writes, without a sync
            self.step_values[player].push(step, stacked, module.loggers)
            self.weight_values[player].push(step, value.weight_vector(), module.loggers)

    def check(self, module: L.LightningModule) -> None:
        """The guard's check outside the logging interval: epoch ends, checkpoints, the end
        of training."""
        self.guard.check(module.trainer)

    @property
    def steps_taken(self) -> int:
        """Training steps recorded and not skipped: the steps that updated the weights."""
        return self.updates - self.guard.skipped_in_fit

    def log_epoch(self, module: L.LightningModule, stage: str, metrics: MetricCollection) -> None:
        """The epoch means of every objective and the metrics' values, through `self.log`."""
        self.guard.check(module.trainer)  # the training steps since the last check first
        values: dict[str, Tensor] = {}
        for player in self.names:
            values.update(self._epoch_values(module, stage, player))
        if stage == "train" and self.guard.policy == "skip":
            # the same on every process (the skip decision is shared)
            values[SKIPPED_STEPS] = float(self.guard.skipped)
            self.guard.skipped = 0
        if metrics:
            for name, value in metrics.compute().items():
                if value.ndim == 0:
                    values[name] = value
                else:  # a matrix is drawn by a callback, not logged as a scalar
                    self.figures.setdefault(stage, {})[name] = (metrics[name], value)
            metrics.reset()
        if not values:
            return
        to_loggers = None  # Lightning's default: to the loggers, if there are any
        if stage == "train":
            write_train_epoch(module, values)
            to_loggers = False
        # already reduced across processes (TermMeans, torchmetrics): no second sync here
        objective_tag = self.tags[(stage, next(iter(self.names)))][0]
        if objective_tag in values:
            module.log(objective_tag, values.pop(objective_tag), prog_bar=stage == "val",
                       sync_dist=False, logger=to_loggers)  # fmt: skip
        module.log_dict(values, on_step=False, on_epoch=True, sync_dist=False, logger=to_loggers)

    def _epoch_values(self, module: L.LightningModule, stage: str, player: str) -> dict:
        """One objective's epoch means, reduced across processes (every rank joins)."""
        trainer = module.trainer
        means = self.means[(stage, player)]
        if not means.updated and trainer.world_size == 1:
            return {}  # with several processes every rank joins the reduction, rows or not
        reduced = means.compute(
            lambda t: trainer.strategy.reduce(t, reduce_op="sum"), device=module.device
        )
        means.reset()
        if reduced is None:
            return {}
        if stage != "train" and non_finite(reduced):
            self.guard.on_bad(trainer, self.guard.names[player], reduced, stage)
        return dict(zip(self.tags[(stage, player)], reduced, strict=True))

    def flush(self, loggers: Any) -> None:
        """Write every pending per-step value now (end of training, checkpoints)."""
        for values in [*self.step_values.values(), *self.weight_values.values()]:
            values.flush(loggers)


def train_epoch_step(trainer: L.Trainer) -> int:
    """The step Lightning gives a training epoch's logged values: its last batch that
    stepped (`fit_loop.on_advance_end` lowers `_batches_that_stepped` by one to log them)."""
    return trainer.fit_loop.epoch_loop._batches_that_stepped - 1


def write_train_epoch(module: L.LightningModule, values: Mapping[str, Any]) -> None:
    """The training epoch's values to the loggers now, as Lightning would write them later
    (same step, with `epoch`), so the checkpoint saved after this hook has them on disk."""
    trainer = module.trainer
    if not module.loggers or not trainer.is_global_zero:
        return
    metrics = {**values, "epoch": trainer.current_epoch}
    step = train_epoch_step(trainer)
    for logger in module.loggers:
        logger.log_metrics(metrics, step=step)
        logger.save()
