"""ObjectiveModule: the LightningModule every task shares.

A task only says how a batch becomes named outputs (`step_outputs`) and which torchmetrics
judge them. The training, validation and test steps, the optimizer set-up and the hand-over
of every value to one recorder (tasks/recorder.py: epoch sums, per-step values, the
non-finite guard) live here once. Figures and tables of the objective are callbacks'.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

import lightning as L
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import ReduceLROnPlateau
from torchmetrics import MetricCollection

from objectives.data.input_spec import describe_inputs
from objectives.errors import ConfigError
from objectives.objective import Objective, ObjectiveValue
from objectives.objective.tags import EPOCH_PREFIX, OBJECTIVE, STAGES, metric_prefix
from objectives.tasks import random_states
from objectives.tasks.plain_attributes import PlainAttributes
from objectives.tasks.recorder import ObjectiveRecorder
from objectives.tasks.signatures import stored_signature
from objectives.tracking.writers import tensorboard_writers

log = logging.getLogger(__name__)

# the methods Lightning inspects on every batch
STEP_METHODS = ("training_step", "validation_step", "test_step")


class ObjectiveModule(PlainAttributes, L.LightningModule):
    """Base class: subclasses set `task_name`, `produces` and implement `step_outputs`."""

    task_name: ClassVar[str] = "task"
    produces: ClassVar[tuple[str, ...]] = ()
    # the metric a sweep summary compares jobs by (as `test/<name>`): it does not depend on
    # the objective, so runs with different losses or weights are comparable
    primary_metric: ClassVar[str] = "objective"
    # whether the data's targets are what the model learns to output (not for a GAN)
    reads_targets: ClassVar[bool] = True
    # the kind of network it trains, for a task that needs its own ("vae", "policy", ...;
    # the networks say theirs as `model_kind`); None: any predictor of inputs → targets
    model_kind: ClassVar[str | None] = None

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
        self.model = model
        # by name: "" for the one objective of most tasks, a player's name for players' tasks
        self.objectives: dict[str, Objective] = self.named_objectives(objective)
        self.register_objectives(self.objectives)
        for name, named in self.objectives.items():
            named.check_fits(self.produces, task=self.task_name)
            named.bind(self.network_of(name))
        example = self.example_outputs()
        if example is not None:  # every term runs once now: a bad setting fails at start-up
            for named in self.objectives.values():
                named.try_on(example)
        for named in self.objectives.values():  # a term's lr without parameters fails now
            named.own_parameter_groups()
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        # metrics cost time every step (train_metrics=false drops them for training); the
        # objective's terms are always kept
        empty = MetricCollection({})
        self.metrics = nn.ModuleDict(  # keyed by tag prefix: "train" would clash with .train()
            {
                EPOCH_PREFIX[s]: (
                    self.configure_metrics(s) if s != "train" or train_metrics else empty
                ).clone(prefix=metric_prefix(s))
                for s in STAGES
            }
        )
        self.recorder = ObjectiveRecorder(self.objectives, nonfinite)
        # the resolved config that built this module and the data's sizes it was built to,
        # saved in checkpoints: eval.py, predict.py and export.py rebuild it from them
        self.run_config: dict | None = None
        self.data_dims: dict | None = None
        # the settings predict.py passes to `predictions` (a continuation's length, ...)
        self.predict_settings: dict[str, Any] = {}
        # this training step's ObjectiveValue (with its graph) until the batch ends
        self.step_value: ObjectiveValue | None = None

    # -- what a task provides -----------------------------------------------------------------
    @classmethod
    def network_dims(cls, dims: Mapping[str, int], task_cfg: Mapping[str, Any]) -> dict[str, int]:
        """The sizes the network is built to (from the data's `dims`); a task whose network
        does not end in the data's targets (an encoder) says its own output size here."""
        return dict(dims)

    @classmethod
    def headline_metric(cls, task_cfg: Mapping[str, Any]) -> str:
        """The metric a sweep compares this task's jobs by: `primary_metric`, unless the
        task's settings change what it is judged by (implicit recommendation: AUC)."""
        return cls.primary_metric

    def named_objectives(self, objective: Objective | Mapping) -> dict[str, Objective]:
        """The objectives by name; one, named "", unless a task trains several (players.py)."""
        if not isinstance(objective, Objective):
            raise ConfigError(f"task {self.task_name} trains one objective; choose one loss")
        return {"": objective}

    def register_objectives(self, objectives: dict[str, Objective]) -> None:
        self.objective = objectives[""]

    def network_of(self, name: str) -> nn.Module:
        """The network whose parameters the objective `name`'s penalties read."""
        return self.model

    def step_outputs(self, batch: Any) -> dict[str, Tensor]:
        """Turn a batch into the named outputs the objective and metrics read."""
        raise NotImplementedError

    def configure_metrics(self, stage: str) -> MetricCollection:
        """The torchmetrics that judge this task at `stage` (train, val or test)."""
        return MetricCollection({})

    def metric_inputs(self, outputs: Mapping[str, Tensor]) -> tuple[Tensor, ...] | Mapping:
        """What the metrics' `update` receives: positional, or keywords each metric picks
        its own from (a mapping)."""
        return outputs["pred"], outputs["target"]

    def epoch_weight(self, batch: Any, outputs: Mapping[str, Tensor]) -> int | Tensor:
        """How much this batch counts in the epoch means of the terms: its rows, the unit
        the terms average over; a task whose terms average over something else (tokens)
        returns that count, a tensor if it lives on the device."""
        return len(batch[0])

    def example_outputs(self) -> dict[str, Tensor] | None:
        """A tiny set of outputs shaped like a real step's, to try every term at start-up."""
        return None

    # -- using a trained model ----------------------------------------------------------------
    def inference_network(self) -> nn.Module:
        """The network a deployment runs, inputs to outputs (the objective is training's
        alone): what export.py writes."""
        return self.model

    def predictions(self, batch: tuple[Tensor, ...], **settings: Any) -> dict[str, Tensor]:
        """A batch of new inputs (no targets) as named columns, one row an input: what
        predict.py writes (run/predict_columns.py turns each into CSV columns)."""
        raise ConfigError(f"task {self.task_name} has no predictions to make")

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> dict:
        """predict.py's batches are `{"inputs": (...), "ids": [...]}` (data/new_inputs.py)."""
        inputs = batch["inputs"] if isinstance(batch, Mapping) else batch
        return self.predictions(tuple(inputs), **self.predict_settings)

    # -- the one step -------------------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def _shared_step(self, batch: Any, stage: str) -> Tensor:
        outputs = self.step_outputs(batch)
        step = self.global_step
        value = self.objective(outputs, step=step)
        self.recorder.record(self, value, stage, self.epoch_weight(batch, outputs), step=step)
        metrics = self.metrics[EPOCH_PREFIX[stage]]
        if metrics:
            inputs = self.metric_inputs(outputs)
            if isinstance(inputs, Mapping):  # by name: each metric takes the outputs it reads
                metrics.update(**inputs)
            else:
                metrics.update(*inputs)
        if stage == "train":
            self.step_value = value  # for callbacks that read the terms before backward
        return value.total

    @stored_signature
    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self._shared_step(batch, "train")

    @stored_signature
    def validation_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self._shared_step(batch, "val")

    @stored_signature
    def test_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self._shared_step(batch, "test")

    # -- what Lightning calls around the steps ------------------------------------------------
    def on_fit_start(self) -> None:
        if self.trainer.is_global_zero:
            for name, named in self.objectives.items():
                log.info("%s: %s", f"Objective ({name})" if name else "Objective", named.formula())

    def on_train_start(self) -> None:
        random_states.restore_when_training(self)  # a resumed run's, kept by on_load_checkpoint

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.step_value = None

    def on_train_epoch_end(self) -> None:
        self.recorder.log_epoch(self, "train", self.metrics[EPOCH_PREFIX["train"]])

    def on_validation_epoch_end(self) -> None:
        self.recorder.log_epoch(self, "val", self.metrics[EPOCH_PREFIX["val"]])

    def on_test_epoch_end(self) -> None:
        self.recorder.log_epoch(self, "test", self.metrics[EPOCH_PREFIX["test"]])

    def optimizer_step(
        self, epoch: int, batch_idx: int, optimizer: Any, optimizer_closure: Any = None
    ) -> None:
        # task.nonfinite=skip: the step is undone on the device if it was bad (a returned
        # None would make Lightning skip it, but only on one process, and after a host read)
        with self.recorder.guard.undone_if_bad(optimizer):
            optimizer.step(closure=optimizer_closure)
        for objective in self.objectives.values():
            objective.after_step()

    def on_train_end(self) -> None:
        self.recorder.check(self)
        self.recorder.flush(self.loggers)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.recorder.check(self)  # no checkpoint is written after a bad step (nonfinite=stop)
        if self.run_config is not None:
            checkpoint["run_config"] = self.run_config
        if self.data_dims is not None:
            checkpoint["dims"] = dict(self.data_dims)
        datamodule = getattr(self._trainer, "datamodule", None)
        if datamodule is not None:  # how new inputs become what the network saw
            checkpoint["inputs"] = describe_inputs(datamodule)
        random_states.save(self, checkpoint)  # every process's, for an exact resume
        # Everything logged up to this checkpoint reaches the disk with it: a run killed later
        # and resumed from here continues a log without a gap (callbacks flush their own
        # values first, Lightning calls them before this hook).
        self.recorder.flush(self.loggers)
        for writer in tensorboard_writers(self.loggers):
            writer.flush()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        random_states.load(self, checkpoint)  # restored when training starts (random_states.py)

    def parameter_groups(self) -> list[nn.Parameter] | list[dict]:
        """Every trainable parameter, in one group; a term that sets `lr`/`weight_decay` for
        parameters of its own (ArcFace's class weights) gets a group of its own, named by its
        config key (Lightning's LearningRateMonitor shows it by that name)."""
        own = [g for o in self.objectives.values() for g in o.own_parameter_groups()]
        taken = {id(p) for group in own for p in group["params"]}
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in taken]
        return [{"params": rest, "name": "network"}, *own] if own else rest

    def configure_optimizers(self) -> Any:
        if self.optimizer_factory is None:
            raise RuntimeError(f"{type(self).__name__} was built without an optimizer")
        optimizer = self.optimizer_factory(params=self.parameter_groups())
        if self.scheduler_factory is None:
            log.debug("optimizer %s, no learning-rate schedule", type(optimizer).__name__)
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer)
        config = {"scheduler": scheduler, "interval": "epoch"}
        if isinstance(scheduler, ReduceLROnPlateau):  # stepped with what the checkpoint monitors
            checkpoint = self._trainer.checkpoint_callback if self._trainer else None
            monitor = getattr(checkpoint, "monitor", None)
            config["monitor"] = monitor or f"{EPOCH_PREFIX['val']}/{OBJECTIVE}"
        log.debug("optimizer %s, learning-rate schedule %s", type(optimizer).__name__, config)
        return {"optimizer": optimizer, "lr_scheduler": config}
