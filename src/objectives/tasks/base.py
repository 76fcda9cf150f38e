"""ObjectiveModule: the LightningModule every task shares.

It owns the objective, the metrics and all logging. A task only says how a batch
becomes named outputs (`step_outputs`) and which torchmetrics judge them; the
training, validation and test steps, the per-term logging and the optimizer set-up
live here once.

Logging is built not to cost: per step, the objective and its terms are stacked into
one detached vector and added to an epoch sum (no host-device sync); every
`trainer.log_every_n_steps` steps that vector starts an asynchronous copy to the host
and reaches the loggers one logging interval later. Epoch means are reduced across
processes once and go through `self.log` at the epoch's end.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import lightning as L
import torch
from torch import Tensor, nn
from torch.optim import Optimizer
from torchmetrics import Metric, MetricCollection

from objectives.errors import NonFiniteObjective
from objectives.objective import Objective, ObjectiveValue
from objectives.tasks.nonfinite import check_policy, describe, non_finite
from objectives.tasks.plain_attributes import PlainAttributes
from objectives.tasks.signatures import stored_signature
from objectives.tracking.step_values import DeferredStepValues
from objectives.tracking.term_means import TermMeans
from objectives.tracking.writers import tensorboard_writers

log = logging.getLogger(__name__)

STAGES = ("train", "val", "test")
# Epoch-level training values get their own section, so `train/` holds per-step values only.
EPOCH_PREFIX = {"train": "train_epoch", "val": "val", "test": "test"}
# the methods Lightning inspects on every batch
STEP_METHODS = ("training_step", "validation_step", "test_step")


class ObjectiveModule(PlainAttributes, L.LightningModule):
    """Base class: subclasses set `task_name`, `produces` and implement `step_outputs`."""

    task_name: ClassVar[str] = "task"
    produces: ClassVar[tuple[str, ...]] = ()
    # the metric a sweep summary compares jobs by (as `test/<name>`): it does not depend on
    # the objective, so runs with different losses or weights are comparable
    primary_metric: ClassVar[str] = "objective"
    # tasks with one objective a player (GAN: ("gen", "disc")); () for one objective
    players: ClassVar[tuple[str, ...]] = ()
    # the player a regularizer joins when its config does not say (`player: ...`)
    default_player: ClassVar[str] = ""
    # whether the data's targets are what the model learns to output (not for a GAN)
    reads_targets: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A task's own step methods get their signature stored too (tasks/signatures.py)."""
        super().__init_subclass__(**kwargs)
        for name in STEP_METHODS:
            if name in cls.__dict__:
                stored_signature(cls.__dict__[name])

    def __init__(
        self,
        model: nn.Module,
        objective: Objective | Mapping[str, Objective],
        optimizer: Callable[[Iterable[nn.Parameter]], Optimizer] | None = None,
        scheduler: Callable[[Optimizer], Any] | None = None,
        train_metrics: bool = True,
        nonfinite: str = "stop",
    ) -> None:
        super().__init__()
        self.nonfinite = check_policy(nonfinite)
        self.skipped_steps = 0  # training steps skipped for a non-finite objective, this epoch
        self._warned_nonfinite = False
        self.model = model
        # one objective (player ""), or one a player for tasks with several (GAN: gen, disc)
        if isinstance(objective, Objective):
            self.objective = objective
            self._players: dict[str, Objective] = {"": objective}
        else:
            self.player_objectives = nn.ModuleDict(dict(objective))
            self._players = dict(objective)
        for player, player_objective in self._players.items():
            player_objective.check_fits(self.produces, task=self.task_name)
            player_objective.bind(self.player_network(player))
        example = self.example_outputs()
        if example is not None:  # every term runs once now: a bad setting fails at start-up
            with torch.no_grad():
                for player_objective in self._players.values():
                    player_objective(example)
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        # metrics cost a few tens of µs a step each; the objective's terms are always kept
        metrics_for = {
            s: self.configure_metrics(s)
            if (s != "train" or train_metrics)
            else MetricCollection({})
            for s in STAGES
        }
        # keyed by tag prefix: a ModuleDict key "train" would clash with Module.train()
        self.metrics = nn.ModuleDict(
            {EPOCH_PREFIX[s]: metrics_for[s].clone(prefix=f"{EPOCH_PREFIX[s]}/") for s in STAGES}
        )
        # per (stage, player): the epoch sums, the tags, and the per-step values (train)
        self.term_means = nn.ModuleDict(
            {
                tagged(EPOCH_PREFIX[s], p): TermMeans(len(o.stacked_names()))
                for s in STAGES
                for p, o in self._players.items()
            }
        )
        self._tags = {
            (s, p): [tagged(EPOCH_PREFIX[s], p, n) for n in o.stacked_names()]
            for s in STAGES
            for p, o in self._players.items()
        }
        self._step_values = {
            p: DeferredStepValues([tagged("train", p, n) for n in o.stacked_names()])
            for p, o in self._players.items()
        }
        # the resolved config that built this module, saved in checkpoints for eval.py
        self.run_config: dict | None = None
        # this training step's ObjectiveValue (with its graph) until the batch ends
        self.step_value: ObjectiveValue | None = None

    # -- what a task provides -----------------------------------------------------------------
    @classmethod
    def network_dims(cls, dims: Mapping[str, int], task_cfg: Mapping[str, Any]) -> dict[str, int]:
        """The sizes the network is built to (from the data's `dims`); a task whose network
        does not end in the data's targets (an encoder) says its own output size here."""
        return dict(dims)

    def player_network(self, player: str) -> nn.Module:
        """The network whose parameters a player's penalties read (all of it, by default)."""
        return self.model

    def step_outputs(self, batch: Any) -> dict[str, Tensor]:
        """Turn a batch into the named outputs the objective and metrics read."""
        raise NotImplementedError

    def configure_metrics(self, stage: str) -> MetricCollection:
        """The torchmetrics that judge this task at `stage` (train, val or test)."""
        return MetricCollection({})

    def metric_inputs(self, outputs: Mapping[str, Tensor]) -> tuple[Tensor, ...]:
        """What the metrics' `update` receives."""
        return outputs["pred"], outputs["target"]

    def example_outputs(self) -> dict[str, Tensor] | None:
        """A tiny set of outputs shaped like a real step's, to try every term at start-up."""
        return None

    # -- the one step -------------------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def _shared_step(self, batch: Any, stage: str) -> Tensor | None:
        outputs = self.step_outputs(batch)
        step = self.global_step
        value = self.objective(outputs, step=step)
        if not self.record(value, stage, batch_size=len(batch[0]), step=step):
            return None  # Lightning skips this step's backward and optimizer step
        metrics = self.metrics[EPOCH_PREFIX[stage]]
        if metrics:
            metrics.update(*self.metric_inputs(outputs))
        if stage == "train":
            self.step_value = value  # for callbacks that read the terms before backward
        return value.total

    def record(
        self,
        value: ObjectiveValue,
        stage: str,
        batch_size: int,
        player: str = "",
        log_step: bool | None = None,
        step: int | None = None,
    ) -> bool:
        """Account one step's objective value: the non-finite guard (training), the epoch
        sums, the per-step values (every `log_every_n_steps` optimizer steps, or when
        `log_step` says). False when the step must be skipped (`nonfinite=skip`). Tasks
        with their own steps (GAN) call it once a player and step."""
        stacked = value.stacked()
        if stage == "train" and self._step_is_non_finite(value.total):
            if self.nonfinite == "skip":
                self.skipped_steps += 1
                return False
            self._on_non_finite(stacked, stage, player)
        self.term_means[tagged(EPOCH_PREFIX[stage], player)].update(stacked, batch_size)
        if stage != "train":
            return True
        step = self.global_step if step is None else step
        if log_step or (log_step is None and step % self.trainer.log_every_n_steps == 0):
            self._log_step_values(stacked, player, step)
        return True

    # -- non-finite objective (see nonfinite.py) ----------------------------------------------
    def _step_is_non_finite(self, total: Tensor) -> bool:
        """Whether J is NaN/±Inf: exactly when any term, weighted or raw, is (J sums the
        weighted terms, each a finite weight times its raw value), so one value is read."""
        bad = not bool(total.isfinite())
        if self.trainer.world_size > 1:  # every rank must stop or skip together
            return self.trainer.strategy.reduce_boolean_decision(bad, all=False)
        return bad

    def _on_non_finite(self, values: Tensor, stage: str, player: str = "") -> None:
        """Stop with a message naming the bad terms (`stop`), or warn once (`warn`)."""
        names = [tagged(player, n) for n in self._players[player].stacked_names()]
        where = describe(names, values, stage, self.global_step, self.current_epoch)
        if self.nonfinite != "stop":
            if not self._warned_nonfinite:
                note = f"task.nonfinite={self.nonfinite}: going on"
                log.warning("non-finite objective at %s (%s)", where, note)
                self._warned_nonfinite = True
            return
        last = newest_checkpoint(self.trainer)
        kept = f"last good checkpoint: {last}" if last else "no checkpoint was written yet"
        raise NonFiniteObjective(
            f"non-finite objective at {where}; {kept}. Lower optimizer.lr, check the data "
            "for NaN, or skip such steps with task.nonfinite=skip"
        )

    @stored_signature
    def training_step(self, batch: Any, batch_idx: int) -> Tensor | None:
        return self._shared_step(batch, "train")

    @stored_signature
    def validation_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self._shared_step(batch, "val")

    @stored_signature
    def test_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self._shared_step(batch, "test")

    # -- logging ------------------------------------------------------------------------------
    def _log_step_values(self, stacked: Tensor, player: str, step: int) -> None:
        """Per-step values, straight to the loggers (rank 0 only), without a device sync."""
        if self.loggers and self.trainer.is_global_zero:
            self._step_values[player].push(step, stacked, self.loggers)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.step_value = None

    def on_train_end(self) -> None:
        for values in self._step_values.values():
            values.flush(self.loggers)

    def _log_epoch_values(self, stage: str) -> None:
        values: dict[str, Tensor] = {}
        for player in self._players:
            values.update(self._player_epoch_values(stage, player))
        if stage == "train" and self.nonfinite == "skip":
            self.log("train_epoch/skipped_steps", float(self.skipped_steps), sync_dist=True)
            self.skipped_steps = 0
        metrics = self.metrics[EPOCH_PREFIX[stage]]
        if metrics:
            for name, value in metrics.compute().items():
                if value.ndim == 0:
                    values[name] = value
                else:  # a matrix (e.g. a confusion matrix) is drawn, not logged as a scalar
                    self._log_figure(name, metrics[name], value)
            metrics.reset()
        if not values:
            return
        # Already reduced across processes (TermMeans, torchmetrics): no second sync here.
        objective_tag = self._tags[(stage, next(iter(self._players)))][0]
        if objective_tag in values:
            self.log(objective_tag, values.pop(objective_tag), prog_bar=stage == "val",
                     sync_dist=False)  # fmt: skip
        self.log_dict(values, on_step=False, on_epoch=True, sync_dist=False)

    def _player_epoch_values(self, stage: str, player: str) -> dict[str, Tensor]:
        """One player's epoch means, reduced across processes (every rank joins)."""
        means = self.term_means[tagged(EPOCH_PREFIX[stage], player)]
        if not means.updated and self.trainer.world_size == 1:
            return {}  # with several processes every rank joins the reduction, rows or not
        reduced = means.compute(
            lambda t: self.trainer.strategy.reduce(t, reduce_op="sum"), device=self.device
        )
        means.reset()
        if reduced is None:
            return {}
        if stage != "train" and non_finite(reduced):
            self._on_non_finite(reduced, stage, player)
        return dict(zip(self._tags[(stage, player)], reduced, strict=True))

    def _log_figure(self, tag: str, metric: Metric, value: Tensor) -> None:
        """Draw a tensor-valued metric with its own `plot` and send it to TensorBoard."""
        if self.trainer.sanity_checking or not self.trainer.is_global_zero:
            return
        writers = tensorboard_writers(self.loggers)
        if not writers:
            return
        import matplotlib.pyplot as plt  # imported here: only runs that draw need it

        figure, _ = metric.plot(value.cpu())
        for writer in writers:
            writer.add_figure(tag, figure, global_step=self.global_step, close=False)
        plt.close(figure)

    def on_train_epoch_end(self) -> None:
        self._log_epoch_values("train")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch_values("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch_values("test")

    def on_fit_start(self) -> None:
        if self.trainer.is_global_zero:
            for player, player_objective in self._players.items():
                label = f"Objective ({player})" if player else "Objective"
                log.info("%s: %s", label, player_objective.formula())
            implicit = implicit_regularization(self.model)
            if implicit:
                log.info("Model regularization (not a term of J): %s", implicit)
        for writer in tensorboard_writers(self.loggers):
            writer.add_text("objective", self.objective_markdown(), self.global_step)

    def objective_markdown(self) -> str:
        """The formula and a table of its terms (each player's), as TensorBoard's text tab
        shows it."""
        lines: list[str] = []
        for player, objective in self._players.items():
            rows = [
                f"| {t.name} | {t.kind} | {t.weight} | `{t.symbol}` | {', '.join(t.reads) or 'θ'} |"
                for t in objective.terms
            ]
            title = [f"**{player}**", ""] if player else []
            lines += [*title, f"`{objective.formula()}`", "",
                      "| term | kind | weight | symbol | reads |", "|---|---|---|---|---|",
                      *rows, ""]  # fmt: skip
        implicit = implicit_regularization(self.model)
        note = [f"Model regularization (not a term of J): {implicit}"] if implicit else []
        return "\n".join([*lines, *note])

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.run_config is not None:
            checkpoint["run_config"] = self.run_config
        # Everything logged up to this checkpoint reaches the disk with it: a run killed later
        # and resumed from here continues a log without a gap (callbacks flush their own
        # values first, Lightning calls them before this hook).
        for values in self._step_values.values():
            values.flush(self.loggers)
        for writer in tensorboard_writers(self.loggers):
            writer.flush()

    # -- optimisation -------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        if self.optimizer_factory is None:
            raise RuntimeError(f"{type(self).__name__} was built without an optimizer")
        optimizer = self.optimizer_factory(params=[p for p in self.parameters() if p.requires_grad])
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"},
        }


def tagged(*parts: str) -> str:
    """`train_epoch/gen/objective` from its parts; the empty player of one-objective tasks
    leaves no trace (`train_epoch/objective`)."""
    return "/".join(part for part in parts if part)


def newest_checkpoint(trainer: L.Trainer) -> str | None:
    """The checkpoint file written last by any checkpoint callback (None before the first)."""
    paths = {
        path
        for callback in trainer.checkpoint_callbacks
        for path in (callback.best_model_path, callback.last_model_path)
        if path and Path(path).is_file()
    }
    return max(paths, key=lambda p: Path(p).stat().st_mtime_ns, default=None)


def implicit_regularization(model: nn.Module) -> str:
    """Regularizers that live in the model rather than in J, e.g. `dropout(p=0.5)`."""
    rates = sorted({m.p for m in model.modules() if isinstance(m, nn.modules.dropout._DropoutNd)})
    return ", ".join(f"dropout(p={p:g})" for p in rates if p > 0)
