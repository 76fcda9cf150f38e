"""Turn a composed config into the objects a run needs: data, network, objective, task.

`train.py` and `eval.py` both assemble through here, so a checkpoint's saved config
rebuilds exactly the module that wrote it. Everything that can be wrong with a
config is found here, before any training starts.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightning as L
from hydra.utils import get_class, instantiate
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, ListConfig, OmegaConf

from objectives.config import options_that_fit
from objectives.errors import ConfigError
from objectives.models import build_model, call_with_dims
from objectives.objective import build_objective
from objectives.tasks import ObjectiveModule

# The parts of a config that define the model; saved in every checkpoint.
RUN_KEYS = ("task", "data", "model", "loss", "regularizer", "optimizer", "scheduler", "seed")


@dataclass
class Assembled:
    datamodule: L.LightningDataModule
    module: ObjectiveModule


def _task_class(cfg: DictConfig) -> type[ObjectiveModule]:
    target = OmegaConf.select(cfg, "task._target_")
    if target is None:
        raise ConfigError("no task selected; pick one, e.g. task=regression")
    task_cls = get_class(target)
    if not (isinstance(task_cls, type) and issubclass(task_cls, ObjectiveModule)):
        raise ConfigError(f"task {target} is not an ObjectiveModule")
    return task_cls


def assemble(cfg: DictConfig) -> Assembled:
    """Build the data module and the task module, checking they fit together."""
    task_cls = _task_class(cfg)
    objective = build_objective(cfg.get("loss"), cfg.get("regularizer"))
    try:
        objective.check_fits(task_cls.produces, task=task_cls.task_name)
    except ConfigError as err:
        fitting = options_that_fit("loss", task_cls.produces)
        raise ConfigError(f"{err}: loss={'|'.join(fitting)}") from None

    datamodule = instantiate(cfg.data)
    network = build_model(instantiate(cfg.model), datamodule.dims)
    scheduler = instantiate(cfg.scheduler) if cfg.get("scheduler") else None
    module = call_with_dims(
        instantiate(cfg.task, _partial_=True),
        datamodule.dims,
        group="task",
        model=network,
        objective=objective,
        optimizer=instantiate(cfg.optimizer),
        scheduler=scheduler,
    )
    module.run_config = run_config(cfg)
    return Assembled(datamodule, module)


def run_config(cfg: DictConfig) -> dict:
    """The resolved model-defining part of `cfg`, as plain Python data (checkpoint-safe)."""
    return {key: plain(cfg[key]) for key in RUN_KEYS if key in cfg}


def plain(node: object) -> object:
    """A config node as resolved Python data; scalars pass through."""
    if isinstance(node, DictConfig | ListConfig):
        return OmegaConf.to_container(node, resolve=True)
    return node


def instantiate_all(group: DictConfig | None) -> list:
    """Callbacks or loggers: every `_target_` node of a group, in config order."""
    if not group:
        return []
    return [instantiate(node) for node in group.values() if node is not None and "_target_" in node]


def instantiate_loggers(cfg: DictConfig) -> list[Logger]:
    return instantiate_all(cfg.get("logger"))
