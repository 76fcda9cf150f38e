"""Turn a composed config into the objects a run needs: data, network, objective, task.

`train.py` and `eval.py` both assemble through here, so a checkpoint's saved config
rebuilds exactly the module that wrote it. Everything that can be wrong with a
config is found here, before any training starts.
"""

from __future__ import annotations

import inspect
import logging
import math
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import lightning as L
import torch
from hydra.utils import get_class, instantiate
from lightning.pytorch.callbacks import (
    Callback,
    ModelSummary,
    RichModelSummary,
    RichProgressBar,
    TQDMProgressBar,
)
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf
from torch.optim.lr_scheduler import ReduceLROnPlateau

from objectives import checks
from objectives.callbacks.group import group_observers, own_callbacks
from objectives.callbacks.model_summary import ModelSummaryTable
from objectives.callbacks.nonfinite_check import NonFiniteCheck
from objectives.errors import ConfigError
from objectives.objective import Objective, build_objective, build_player_objectives
from objectives.refusals import refused
from objectives.run.config import (
    check_required,
    config_dir,
    group_options,
    options_that_fit,
    plain,
    player_parts,
)
from objectives.run.console import shows_unicode
from objectives.run.null_profiler import NullProfiler
from objectives.run.sizes import build_model, call_with_dims
from objectives.run.typed_settings import check_setting_types
from objectives.tasks import ObjectiveModule
from objectives.tasks.players import Players

log = logging.getLogger(__name__)

# The parts of a config that define the model; saved in every checkpoint.
RUN_KEYS = (
    "task", "data", "model", "loss", "regularizer", "weighting", "optimizer", "scheduler", "seed"
)  # fmt: skip


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


def _check_made_for(task_cls: type[ObjectiveModule], datamodule: object, data: str) -> None:
    """Data whose batches only one task reads (query lists, rollouts, rating triples) says
    which (`made_for`): another task would fail at its first batch, or suggest a model."""
    made_for = getattr(datamodule, "made_for", None)
    task = task_cls.task_name
    if made_for is not None and made_for != task:
        own = data_made_for(task)
        other = f", or data made for task={task}: data={'|'.join(own)}" if own else ""
        raise ConfigError(
            f"data {data!r} is made for task={made_for}, not task={task}; "
            f"choose task={made_for}{other}"
        )


def data_made_for(task: str) -> list[str]:
    """The data options whose module says it is made for `task` (tic-tac-toe positions for
    task=policy_value)."""
    found = []
    for name in group_options("data"):
        try:
            target = OmegaConf.load(config_dir() / "data" / f"{name}.yaml").get("_target_")
            if getattr(get_class(target), "made_for", None) == task:
                found.append(name)
        except Exception:  # an option that does not name a class says nothing here
            continue
    return found


def _check_targets(task_cls: type[ObjectiveModule], dims: dict, data: str) -> None:
    """Class labels need a task that takes `num_classes` (real-valued targets are caught by
    the `num_classes` the classification task asks of the data)."""
    if not task_cls.reads_targets:
        return
    if "num_classes" in dims and "num_classes" not in inspect.signature(task_cls).parameters:
        raise ConfigError(
            f"task {task_cls.task_name} reads real-valued targets, but data {data!r} has "
            f"{dims['num_classes']} class labels; choose task=classification with a "
            f"classification loss, e.g. task=classification loss=cross_entropy"
        )


def _objective_of(task_cls: type[ObjectiveModule], cfg: DictConfig) -> Objective | dict:
    """The objective, or one a player for tasks with players, checked against what the task
    produces."""
    players = task_cls.players if issubclass(task_cls, Players) else ()
    if players:
        objectives = build_player_objectives(
            cfg.get("loss"),
            cfg.get("regularizer"),
            players,
            task_cls.default_player,
            cfg.get("weighting"),
        )
    else:
        for name, node in (cfg.get("loss") or {}).items():
            parts = list(player_parts(node))
            if parts:
                fitting = options_that_fit("loss", task_cls.produces)
                raise ConfigError(
                    f"loss '{name}' has one part a player ({', '.join(parts)}), for task=gan; "
                    f"task '{task_cls.task_name}' trains one objective: "
                    f"loss={'|'.join(fitting)}"
                )
        objectives = {
            "": build_objective(cfg.get("loss"), cfg.get("regularizer"), cfg.get("weighting"))
        }
    for objective in objectives.values():
        try:
            objective.check_fits(task_cls.produces, task=task_cls.task_name)
        except ConfigError as err:
            fitting = options_that_fit("loss", task_cls.produces, players)
            raise ConfigError(f"{err}: loss={'|'.join(fitting)}") from None
    return objectives if players else objectives[""]


def assemble(cfg: DictConfig) -> Assembled:
    """Build the data module and the task module, checking they fit together."""
    check_required(cfg)
    if cfg.get("trainer"):
        check_trainer(cfg.trainer)
    if cfg.get("torch_threads") is not None:  # applied by train(), not by building the parts
        checks.positive_int(cfg.torch_threads, "torch_threads", example=1)
    if cfg.get("test") is not None:
        checks.boolean(cfg.test, "test")
    check_setting_types(cfg)
    task_cls = _task_class(cfg)
    objective = _objective_of(task_cls, cfg)

    with refused("data"):  # every library's refusal of a setting: one line naming it
        datamodule = instantiate(cfg.data)
        dims = datamodule.dims
    _check_made_for(task_cls, datamodule, cfg.data.get("name", "the data"))
    _check_targets(task_cls, dims, cfg.data.get("name", "the data"))
    return Assembled(datamodule, build_module(cfg, dims, task_cls, objective))


def assemble_without_data(cfg: DictConfig, dims: dict) -> ObjectiveModule:
    """The task module of a saved run config, sized by the `dims` its checkpoint saved: no
    data is read (predict and export run where the training data is not)."""
    task_cls = _task_class(cfg)
    return build_module(cfg, dims, task_cls, _objective_of(task_cls, cfg))


def build_module(
    cfg: DictConfig, dims: dict, task_cls: type[ObjectiveModule], objective: Objective | dict
) -> ObjectiveModule:
    """The network, optimizer, scheduler and task module of `cfg`, sized by the data's dims."""
    with refused("model"):
        network = build_model(
            instantiate(cfg.model), task_cls.network_dims(dims, cfg.task), task_cls.model_kind
        )
    with refused("optimizer"):
        optimizer = checked_optimizer(instantiate(cfg.optimizer), cfg.optimizer)
    horizon = (cfg.get("trainer") or {}).get("max_epochs") or 1
    horizon = horizon if isinstance(horizon, int) and horizon > 0 else 1
    lr = (cfg.get("optimizer") or {}).get("lr", 0.1)
    lr = lr if isinstance(lr, int | float) and math.isfinite(lr) and lr > 0 else 0.1
    scheduler = (
        checked_scheduler(cfg.scheduler, horizon, float(lr)) if cfg.get("scheduler") else None
    )
    with refused("task"):
        module = call_with_dims(
            instantiate(cfg.task, _partial_=True),
            dims,
            group="task",
            model=network,
            objective=objective,
            optimizer=optimizer,
            scheduler=scheduler,
        )
    if cfg.get("trainer"):
        check_fits_task(cfg.trainer, module)
    module.run_config = run_config(cfg)
    module.data_dims = dict(dims)
    return module


# torch.optim's "Invalid ... value" messages, and the setting each one is about
OPTIMIZER_MESSAGES = {
    "learning rate": "lr",
    "epsilon": "eps",
    "beta": "betas",
    "weight_decay": "weight_decay",
    "momentum": "momentum",
    "dampening": "dampening",
}


def checked_scheduler(node: DictConfig, horizon: int = 1, lr: float = 0.1) -> Callable:
    """The scheduler factory, once it has accepted its settings on a dummy optimizer: torch
    checks them only when the module builds it, after the trainer started. The schedule is
    stepped `horizon` times (the run's epochs, at most 10,000) from the optimizer's `lr`: a
    learning rate that turns negative or non-finite on the way (`scheduler.eta_min=-1`) is
    refused too. A plateau schedule (ReduceLROnPlateau) is stepped with a value that never
    improves, so that it lowers the rate as often as its patience lets it."""
    with refused("scheduler"):
        factory = instantiate(node)
        made = getattr(factory, "func", factory)
        plateau = isinstance(made, type) and issubclass(made, ReduceLROnPlateau)
        if plateau:  # before torch's own checks, which name no setting
            check_plateau(node)
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
        scheduler = factory(optimizer=optimizer)
        for step in range(1, max(1, min(horizon, 10_000)) + 1):
            optimizer.step()
            if plateau:
                scheduler.step(1.0)
            else:
                scheduler.step()  # some settings fail only here (CosineAnnealingLR, T_max=0)
            lr = optimizer.param_groups[0]["lr"]
            if not math.isfinite(lr) or lr < 0:
                raise ConfigError(
                    f"scheduler: the learning rate becomes {lr:g} at step {step} of "
                    f"{horizon}; check scheduler.* ({_settings(node)})"
                )
    return factory


def check_plateau(node: DictConfig) -> None:
    """Settings torch's ReduceLROnPlateau takes without a word but cannot mean: a factor of
    0 or less (the rate drops to min_lr at once), a negative patience (it lowers the rate
    at every validation), a negative threshold, cooldown or min_lr."""
    settings = plain(node)
    if "factor" in settings:
        checks.number(settings["factor"], "scheduler.factor", low=0, high=1, low_open=True,
                      high_open=True, example=0.1)  # fmt: skip
    for key, example in (("patience", 10), ("cooldown", 0)):
        if key in settings:
            checks.integer(settings[key], f"scheduler.{key}", low=0, example=example)
    for key, example in (("threshold", 0.0001), ("min_lr", 0.0), ("eps", 1e-8)):
        if key in settings and not isinstance(settings[key], list):
            checks.number(settings[key], f"scheduler.{key}", low=0, example=example)


def _settings(node: DictConfig) -> str:
    settings = plain(node).items()
    return ", ".join(f"{k}={_typed(v)}" for k, v in settings if not str(k).startswith("_"))


def checked_optimizer(factory: Callable, node: DictConfig) -> Callable:
    """The optimizer factory, once it has accepted its settings on a dummy parameter: torch
    checks them only when the module builds the optimizer, after the trainer started."""
    try:
        factory([torch.nn.Parameter(torch.zeros(1))])
    except (TypeError, ValueError) as err:
        raise ConfigError(_optimizer_message(factory, node, err)) from None
    momentum = node.get("momentum")
    if isinstance(momentum, int | float) and not 0 <= momentum < 1:  # torch takes any ≥ 0
        raise ConfigError(
            f"optimizer.momentum={_typed(momentum)} must be in [0, 1): with 1 or more no "
            "gradient is ever forgotten and the steps grow without bound; e.g. "
            "optimizer.momentum=0.9"
        )
    if node.get("lr") == 0:  # torch accepts it; every step then leaves the weights as they are
        raise ConfigError(
            "optimizer.lr=0 never moves a parameter (every step is lr × update); "
            "e.g. optimizer.lr=0.001"
        )
    return factory


def _optimizer_message(factory: Callable, node: DictConfig, err: Exception) -> str:
    target = node.get("_target_", "the optimizer")
    settings = {k: v for k, v in plain(node).items() if not str(k).startswith("_")}
    reason = str(err).splitlines()[0] if str(err) else type(err).__name__
    key = next((k for phrase, k in OPTIMIZER_MESSAGES.items() if phrase in reason), None)
    text = [k for k, v in settings.items() if isinstance(v, str)]
    if key is None and text:  # a number given as text: torch fails comparing it
        key, reason = text[0], "not a number"
    if key is None or key not in settings:
        return f"{target} refused its settings ({reason}); check optimizer.*: {settings}"
    func = getattr(factory, "func", factory)
    try:
        default = inspect.signature(func).parameters[key].default
    except (KeyError, TypeError, ValueError):
        default = inspect.Parameter.empty
    example = f"; e.g. optimizer.{key}={_typed(default)}" if _is_number_or_pair(default) else ""
    return f"optimizer.{key}={_typed(settings[key])} is refused by {target} ({reason}){example}"


def _is_number_or_pair(value: object) -> bool:
    items = value if isinstance(value, tuple) else (value,)
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in items)


def _typed(value: object) -> str:
    """A value as it is typed on the command line: `0.001`, `[0.9,0.999]`, `abc`."""
    if isinstance(value, list | tuple):
        return "[" + ",".join(_typed(v) for v in value) + "]"
    return f"{value:g}" if isinstance(value, float) else str(value)


def check_trainer(node: DictConfig) -> None:
    """Refuse text where the trainer takes a number (`trainer.max_epochs=abc`, which Lightning
    would only trip over, without a message, once fitting starts), or a float where it takes
    an integer. Settings the trainer's signature does not type are left to it."""
    check_trains_something(node)
    try:
        hints = typing.get_type_hints(get_class(node._target_).__init__)
    except Exception:  # an unknown or untyped trainer: nothing to check against
        return
    for key in node:
        if key not in hints or str(key).startswith("_"):
            continue
        try:
            value = plain(node[key])
        except Exception:  # an interpolation that resolves only inside a Hydra run
            continue
        accepted, literals = _accepted(hints[key])
        example = "10"
        if isinstance(value, str) and str not in accepted and value not in literals:
            if bool in accepted:  # a switch (`enable_progress_bar`), maybe with words (`warn`)
                names = ["true", "false", *sorted({str(v) for v in literals})]
                wanted = " or ".join(names) if len(names) == 2 else "one of " + ", ".join(names)
                example = "true"
            elif literals and not accepted & {int, float}:
                names = sorted({str(v) for v in literals})
                wanted, example = "one of " + ", ".join(names), names[0]
            else:
                wanted = "an integer" if float not in accepted else "a number"
        elif isinstance(value, float) and float not in accepted and int in accepted:
            wanted = "an integer"
        else:
            continue
        raise ConfigError(
            f"trainer.{key} must be {wanted}, got {value!r}; e.g. trainer.{key}={example}"
        )
    check_trainer_values(node)


def check_trains_something(node: DictConfig) -> None:
    """Refuse a limit of zero epochs or steps: such a fit would end at once, having
    trained nothing, and report its initial weights as if they were fitted."""
    for key in ("max_epochs", "max_steps"):
        try:
            value = plain(node.get(key))
        except Exception:  # an interpolation that resolves only inside a Hydra run
            continue
        if value == 0 and not isinstance(value, bool):
            raise ConfigError(
                f"trainer.{key}=0 trains nothing; use trainer.{key}=1 or more (-1: no limit), "
                "or test a checkpoint with eval.py ckpt_path=..."
            )
    # Lightning takes 0 and fails in the first step (integer modulo by zero)
    if node.get("accumulate_grad_batches") is not None:
        checks.positive_int(node.accumulate_grad_batches, "trainer.accumulate_grad_batches")


# settings Lightning takes and then divides by (ZeroDivisionError in the first step or
# epoch), or quietly ignores when out of range: (key, lowest value, whether null means
# something other than Lightning's default, example). Unset or null: Lightning's default.
TRAINER_COUNTS = (
    ("log_every_n_steps", 1, False, 10),  # −1 logs every step, 0 divides by zero
    ("check_val_every_n_epoch", 1, True, 1),  # −1 validates every epoch, 0 divides by zero
    ("num_sanity_val_steps", -1, False, 2),  # −1: every validation batch; −5 runs none
    ("min_epochs", 0, True, 1),
    ("min_steps", 0, True, 1),
)
DOUBLE_PRECISION = (64, "64", "64-true", "double")


def check_trainer_values(node: DictConfig) -> None:
    """Refuse trainer settings Lightning accepts but then crashes on (a division by zero
    inside the first step or epoch) or silently ignores (a negative clipping threshold, a
    minimum above the maximum), each in one line naming the setting."""

    for key, low, nullable, example in TRAINER_COUNTS:
        value = _setting(node, key)
        if value is None:
            continue
        what = f"an integer ≥ {low}" + (" (or null)" if nullable else "")
        checks.integer(value, f"trainer.{key}", low=low, what=what, example=example)
    interval = _setting(node, "val_check_interval")
    # Lightning refuses a negative one itself, and takes the float 0.0 as "once an epoch"
    if isinstance(interval, int) and not isinstance(interval, bool) and interval == 0:
        raise ConfigError(
            "trainer.val_check_interval=0 validates every 0 training batches, which Lightning "
            "divides by; use a whole number ≥ 1 of batches, or a fraction of an epoch in "
            "(0, 1], e.g. trainer.val_check_interval=1.0"
        )
    clip = _setting(node, "gradient_clip_val")
    if clip is not None and not (
        isinstance(clip, int | float) and not isinstance(clip, bool) and clip >= 0
    ):  # Lightning skips clipping at a threshold < 0 without a word, and fails on NaN
        raise ConfigError(
            f"trainer.gradient_clip_val must be a number ≥ 0 (0 or null: no clipping), got "
            f"{checks.show(clip)}; e.g. trainer.gradient_clip_val=1.0"
        )
    for low_key, high_key in (("min_epochs", "max_epochs"), ("min_steps", "max_steps")):
        least, most = _setting(node, low_key), _setting(node, high_key)
        if isinstance(least, int) and isinstance(most, int) and 0 <= most < least:
            raise ConfigError(
                f"trainer.{low_key}={least} is more than trainer.{high_key}={most}: the fit "
                f"stops at {high_key} and never reaches {low_key}; raise trainer.{high_key} "
                f"or lower trainer.{low_key}"
            )
    precision = _setting(node, "precision")
    if precision in DOUBLE_PRECISION:
        raise ConfigError(
            f"trainer.precision={precision} is not supported: Lightning turns only its own "
            "steps' batches into float64, while the data stays float32 and the figures, "
            "saliency and metrics feed it to the model outside those steps (float32 inputs "
            "meet float64 weights); use trainer.precision=32-true"
        )


def _setting(node: DictConfig, key: str) -> object:
    """`node.key` as plain data; None when unset or resolvable only inside a Hydra run."""
    try:
        return plain(node.get(key))
    except Exception:  # an interpolation that resolves only inside a Hydra run
        return None


def check_fits_task(node: DictConfig, module: ObjectiveModule) -> None:
    """A task that steps its optimizers itself (manual optimization: the GAN's players) has
    no gradient clipping or accumulation by the Trainer; Lightning refuses both only once
    the fit starts, with a traceback."""
    if module.automatic_optimization:
        return
    settings = {
        "gradient_clip_val": lambda v: v not in (None, 0),
        "accumulate_grad_batches": lambda v: v not in (None, 1),
    }
    for key, is_set in settings.items():
        value = _setting(node, key)
        if is_set(value):
            raise ConfigError(
                f"trainer.{key}={checks.show(value)} does not apply to task "
                f"{module.task_name}: it steps its optimizers itself (manual optimization), "
                f"and Lightning clips and accumulates only for automatic optimization; "
                f"remove trainer.{key}"
            )


def _accepted(hint: object) -> tuple[set[type], set[object]]:
    """The plain types and literal values a type hint accepts (Optional, Union, Literal)."""
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return set(), set(typing.get_args(hint))
    if origin in (typing.Union, types.UnionType):
        accepted: set[type] = set()
        literals: set[object] = set()
        for arg in typing.get_args(hint):
            arg_types, arg_literals = _accepted(arg)
            accepted |= arg_types
            literals |= arg_literals
        return accepted, literals
    return ({origin or hint} if isinstance(origin or hint, type) else {object}), set()


def run_config(cfg: DictConfig) -> dict:
    """The resolved model-defining part of `cfg`, as plain Python data (checkpoint-safe)."""
    return {key: plain(cfg[key]) for key in RUN_KEYS if key in cfg}


def instantiate_all(group: DictConfig | None, key: str = "callbacks") -> list:
    """Callbacks or loggers (`key`): every `_target_` node of a group, in config order. A
    node whose factory builds None is switched off (callbacks.early_stopping with
    `patience: null`) and left out."""
    built = []
    for name, node in (group or {}).items():
        if node is not None and "_target_" in node:
            with refused(f"{key}.{name}"):
                made = instantiate(node)
            log.debug("%s.%s: %s", key, name, "off" if made is None else type(made).__name__)
            if made is not None:
                built.append(made)
    return built


def instantiate_loggers(cfg: DictConfig) -> list[Logger]:
    return instantiate_all(cfg.get("logger"), "logger")


def build_trainer(
    trainer_cfg: DictConfig, callbacks: Sequence[Callback] = (), loggers: Sequence[Logger] = ()
) -> L.Trainer:
    """The configured Trainer, built for speed where that changes nothing it computes: the
    project's observer callbacks share one hook dispatch (callbacks/group.py), and the
    profiler is a no-op one unless `trainer.profiler` asks for Lightning's
    (null_profiler.py)."""
    extra = {} if trainer_cfg.get("profiler") is not None else {"profiler": NullProfiler()}
    callbacks = plain_progress_bar_on_narrow_console(callbacks)
    with refused("trainer"):
        trainer = instantiate(
            trainer_cfg,
            callbacks=group_observers(with_nonfinite_check(callbacks)),
            logger=list(loggers) or False,
            **extra,
        )  # fmt: skip
    use_own_model_summary(trainer)
    return trainer


def plain_progress_bar_on_narrow_console(callbacks: Sequence[Callback]) -> list[Callback]:
    """Rich's progress bar draws • and box characters an ASCII or Latin-1 console cannot
    show (escaped, they overflow its line and the bar's redraws pile up); there, Lightning's
    plain (tqdm) bar, which draws in ASCII, takes its place."""
    if shows_unicode():
        return list(callbacks)
    return [
        TQDMProgressBar(refresh_rate=c.refresh_rate) if isinstance(c, RichProgressBar) else c
        for c in callbacks
    ]


def with_nonfinite_check(callbacks: Sequence[Callback]) -> list[Callback]:
    """The project's observers (which draw weights and values at epoch ends) get the
    guard's check before them (callbacks/nonfinite_check.py); without observers there is
    nothing to protect, and no callback is added."""
    return [NonFiniteCheck(), *callbacks] if own_callbacks(callbacks) else list(callbacks)


def use_own_model_summary(trainer: L.Trainer) -> None:
    """Lightning's own model summary (added when `enable_model_summary` is true) becomes the
    one without an empty FLOPs column (callbacks/model_summary.py); a user's stays."""
    for i, callback in enumerate(trainer.callbacks):
        if type(callback) in (ModelSummary, RichModelSummary):
            trainer.callbacks[i] = ModelSummaryTable(max_depth=callback._max_depth)
