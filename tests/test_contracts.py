"""The private internals of Lightning, Hydra, omegaconf, TensorBoard, torchmetrics and torch
that the code relies on: one test each, checking the behaviour our file depends on.

These versions are pinned in constraints.txt. Before raising a pin, run this file on the
new version: a failure names the internal, the file of ours that relies on it and what to
do (adapt that file, or keep the pin).
"""

from __future__ import annotations

import argparse
import functools
import inspect
import re
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

SITE = Path(L.__file__).parent  # lightning's own sources


@contextmanager
def relied_on(package: str, internal: str, ours: str) -> Iterator[None]:
    """Turn any failure inside into one message: which internal of `package` changed,
    which of our files relies on it, and what to do."""
    try:
        yield
    except Exception as err:  # AssertionError, ImportError, AttributeError, TypeError, ...
        pytest.fail(
            f"{package} {version(package)} no longer provides {internal} as {ours} relies on "
            f"({type(err).__name__}: {err}); update {ours}, or keep {package} pinned to the "
            "tested version in constraints.txt",
            pytrace=False,
        )


# -- one short fit that several Lightning contracts are read from ------------------------------
def _declared(*names: str) -> inspect.Signature:
    """A signature with parameters `names`, to store as a step's `__signature__`."""
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    return inspect.Signature([inspect.Parameter(n, kind) for n in names])


class Probe(L.LightningModule):
    """Records, inside its steps, what our code reads there."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(2, 1)
        self.fx_names: list[object] = []  # the instance __dict__'s `_current_fx_name`
        self.total_batch_idx: list[int] = []
        self.train_batch_idx: list[object] = []  # None: Lightning read `__signature__`
        self.val_batch_idx: list[object] = []

    # the code takes batch_idx, the stored signature does not: Lightning passes it only if
    # it reads the code rather than `__signature__`
    def training_step(self, batch: Any, batch_idx: Any = None) -> torch.Tensor:
        self.fx_names.append(self.__dict__.get("_current_fx_name", "<not in __dict__>"))
        self.total_batch_idx.append(self.trainer.fit_loop.epoch_loop.total_batch_idx)
        self.train_batch_idx.append(batch_idx)
        return self.layer(batch[0]).pow(2).mean()

    training_step.__signature__ = _declared("self", "batch")  # type: ignore[attr-defined]

    def validation_step(self, batch: Any, batch_idx: Any = None) -> None:
        self.val_batch_idx.append(batch_idx)

    validation_step.__signature__ = _declared("self", "batch")  # type: ignore[attr-defined]

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class Counter(Callback):
    """A group member with its own hooks and state."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.batches = 0
        self.validations = 0

    @property
    def state_key(self) -> str:
        return f"Counter[{self.name}]"

    def on_train_batch_end(self, *args: Any, **kwargs: Any) -> None:
        self.batches += 1

    def state_dict(self) -> dict[str, Any]:
        return {"batches": self.batches}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.batches = state_dict["batches"]


class OnValidation(Counter):
    """A member with a hook the other does not override."""

    def on_validation_epoch_end(self, *args: Any, **kwargs: Any) -> None:
        self.validations += 1


EPOCHS, BATCHES = 2, 3


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A 2-epoch, 3-batch CPU fit of `Probe` with a `CallbackGroup` of two `Counter`s, and
    the checkpoint it saved."""
    from objectives.callbacks.group import CallbackGroup

    folder = tmp_path_factory.mktemp("fit")
    module = Probe()
    members = [Counter("a"), OnValidation("b")]
    group = CallbackGroup(members)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=EPOCHS,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[group],
        default_root_dir=folder,
    )
    data = DataLoader(TensorDataset(torch.randn(2 * BATCHES, 2)), batch_size=2)
    with relied_on(
        "lightning",
        "a plain `Trainer.fit` and `save_checkpoint` with a `CallbackGroup`",
        "src/objectives/callbacks/group.py (and every task)",
    ):
        trainer.fit(module, train_dataloaders=data, val_dataloaders=data)
        trainer.save_checkpoint(folder / "fit.ckpt")
    checkpoint = torch.load(folder / "fit.ckpt", weights_only=False)
    return SimpleNamespace(module=module, members=members, group=group, checkpoint=checkpoint)


# -- lightning ----------------------------------------------------------------------------------
def test_current_fx_name_is_a_plain_instance_attribute(fitted: SimpleNamespace) -> None:
    with relied_on(
        "lightning",
        "`LightningModule._current_fx_name` as a plain instance attribute (set in __init__, "
        "assigned around each hook)",
        "src/objectives/tasks/plain_attributes.py",
    ):
        assert "_current_fx_name" in vars(L.LightningModule()), "not set by __init__"
        assert fitted.module.fx_names == ["training_step"] * (EPOCHS * BATCHES), (
            f"instance __dict__ during training_step held {fitted.module.fx_names}"
        )


def test_step_signatures_are_read_through_inspect(fitted: SimpleNamespace) -> None:
    with relied_on(
        "lightning",
        "`signature_utils.is_param_in_hook_signature` reading a step's `__signature__` "
        "(inspect.getfullargspec) to decide whether to pass batch_idx",
        "src/objectives/tasks/signatures.py",
    ):
        from lightning.pytorch.loops import evaluation_loop, training_epoch_loop
        from lightning.pytorch.utilities.signature_utils import is_param_in_hook_signature

        def step(self: object, batch: object, batch_idx: object) -> None: ...

        step.__signature__ = _declared("self", "batch")  # type: ignore[attr-defined]
        bound = step.__get__(object())
        assert not is_param_in_hook_signature(bound, "batch_idx", min_args=2)
        for loop in (training_epoch_loop, evaluation_loop):
            assert loop.is_param_in_hook_signature is is_param_in_hook_signature, loop.__name__
        # the loops themselves: a step declared without batch_idx is called without it
        assert fitted.module.train_batch_idx == [None] * (EPOCHS * BATCHES)
        assert fitted.module.val_batch_idx == [None] * EPOCHS


def test_callback_hooks_are_looked_up_on_the_instance(fitted: SimpleNamespace) -> None:
    with relied_on(
        "lightning",
        "`trainer.call._call_callback_hooks` calling `getattr(callback, hook)` on the "
        "instance, with hooks all defined on `Callback` itself",
        "src/objectives/callbacks/group.py",
    ):
        from lightning.pytorch.trainer import call

        from objectives.callbacks.group import HOOKS

        assert "getattr(callback, hook_name)" in inspect.getsource(call._call_callback_hooks)
        a, b = fitted.members
        assert (a.batches, b.batches) == (EPOCHS * BATCHES,) * 2, "a shared hook was not run"
        assert b.validations == EPOCHS, "a hook one member overrides was not run"
        # every hook name Lightning dispatches is one the group knows
        dispatch = re.compile(r"_call_callback_hooks\(\s*\w+\s*,\s*\"(\w+)\"")
        direct = re.compile(r"\bcallback\.(on_\w+)\(")
        called = {
            name
            for path in (SITE / "pytorch").rglob("*.py")
            for pattern in (dispatch, direct)
            for name in pattern.findall(path.read_text(encoding="utf-8"))
        }
        assert len(called) > 20, f"found only {sorted(called)} in Lightning's sources"
        assert called <= set(HOOKS), f"hooks the group misses: {sorted(called - set(HOOKS))}"


def test_callback_state_is_kept_by_state_key(fitted: SimpleNamespace) -> None:
    with relied_on(
        "lightning",
        "`Callback.state_key` / `state_dict` / `load_state_dict` (a checkpoint's "
        '`"callbacks"` keyed by state_key, empty states left out)',
        "src/objectives/callbacks/group.py",
    ):
        from lightning.pytorch.trainer.call import _call_callbacks_load_state_dict

        from objectives.callbacks.group import CallbackGroup

        assert isinstance(inspect.getattr_static(Callback, "state_key"), property)
        assert Callback().state_dict() == {}
        Callback().load_state_dict({})
        saved = fitted.checkpoint["callbacks"]
        expected = {f"Counter[{n}]": {"batches": EPOCHS * BATCHES} for n in "ab"}
        assert saved == {fitted.group.state_key: expected}, saved
        fresh = [Counter("a"), OnValidation("b")]
        _call_callbacks_load_state_dict(
            SimpleNamespace(callbacks=[CallbackGroup(fresh)]), fitted.checkpoint
        )
        assert [c.batches for c in fresh] == [EPOCHS * BATCHES] * 2


def test_total_batch_idx_counts_batches_across_epochs(fitted: SimpleNamespace) -> None:
    with relied_on(
        "lightning",
        "`trainer.fit_loop.epoch_loop.total_batch_idx` (0, 1, ... across epochs)",
        "src/objectives/tasks/gan.py",
    ):
        assert fitted.module.total_batch_idx == list(range(EPOCHS * BATCHES))


class EpochStepProbe(L.LightningModule):
    """Logs a training epoch value through Lightning and records our step for it."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(2, 1)
        self.ours: list[int] = []

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self.layer(batch[0]).pow(2).mean()

    def on_train_epoch_end(self) -> None:
        from objectives.tasks.recorder import train_epoch_step

        self.ours.append(train_epoch_step(self.trainer))
        self.log("x", 1.0, on_epoch=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class StepsOf(L.pytorch.loggers.Logger):
    """A logger that keeps the step of each `x` it is given."""

    name, version = "steps", 0
    steps: list[int]

    def log_hyperparams(self, *args: Any, **kwargs: Any) -> None:
        pass

    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        if "x" in metrics:
            self.steps.append(step)


def test_training_epoch_values_are_logged_at_the_last_stepped_batch(tmp_path: Path) -> None:
    with relied_on(
        "lightning",
        "`trainer.fit_loop.epoch_loop._batches_that_stepped` − 1 as the step of a training "
        "epoch's logged values",
        "src/objectives/tasks/recorder.py (train_epoch_step)",
    ):
        logger = StepsOf()
        logger.steps = []
        module = EpochStepProbe()
        trainer = L.Trainer(accelerator="cpu", devices=1, max_epochs=2, logger=logger,
                            accumulate_grad_batches=2, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False,
                            default_root_dir=tmp_path)  # fmt: skip
        data = DataLoader(TensorDataset(torch.randn(8, 2)), batch_size=2)  # 2 steps an epoch
        trainer.fit(module, train_dataloaders=data)
        assert logger.steps == module.ours == [1, 3]


def test_ddp_kwargs_hold_find_unused_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    with relied_on(
        "lightning",
        "`DDPStrategy._ddp_kwargs` (the kwargs, `find_unused_parameters` among them, that "
        "DistributedDataParallel gets; also for strategy=ddp_find_unused_parameters_true)",
        "src/objectives/tasks/gan.py",
    ):
        from lightning.pytorch.strategies import DDPStrategy, StrategyRegistry, ddp

        assert DDPStrategy()._ddp_kwargs.get("find_unused_parameters", False) is False
        assert DDPStrategy(find_unused_parameters=True)._ddp_kwargs == {
            "find_unused_parameters": True
        }
        named = StrategyRegistry.get("ddp_find_unused_parameters_true")
        assert isinstance(named, DDPStrategy), type(named)
        assert named._ddp_kwargs.get("find_unused_parameters") is True
        wrapped: dict[str, Any] = {}
        monkeypatch.setattr(ddp, "DistributedDataParallel", lambda **kw: wrapped.update(kw))
        strategy = DDPStrategy(
            parallel_devices=[torch.device("cpu")] * 2, find_unused_parameters=True
        )
        strategy._setup_model(nn.Linear(1, 1))
        assert wrapped.get("find_unused_parameters") is True, wrapped


def test_ddp_children_are_started_through_hydra_subprocess_cmd(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with relied_on(
        "lightning",
        "`strategies.launchers.subprocess_script._hydra_subprocess_cmd(local_rank)`, the "
        "command `_SubprocessScriptLauncher` starts a Hydra run's extra ranks with",
        "src/objectives/run/distributed.py",
    ):
        from hydra.core.hydra_config import HydraConfig
        from lightning.fabric.plugins.environments import LightningEnvironment
        from lightning.fabric.strategies.launchers.subprocess_script import (
            _hydra_subprocess_cmd as original,
        )
        from lightning.pytorch.strategies.launchers import subprocess_script

        from objectives.run.distributed import child_command, use_job_command_for_children

        def shape(fn: Any) -> list[tuple[str, Any]]:
            return [(p.name, p.kind) for p in inspect.signature(fn).parameters.values()]

        assert shape(original) == shape(child_command), inspect.signature(original)
        assert hasattr(subprocess_script, "_hydra_subprocess_cmd")
        # what the launcher calls for a Hydra run: the module global we replace
        asked: list[int] = []

        def command(local_rank: int) -> tuple[list[str], str]:
            asked.append(local_rank)
            return ["child", str(local_rank)], "/job/cwd"

        started: list[tuple[list[str], str | None]] = []

        def popen(cmd: list[str], env: object = None, cwd: str | None = None) -> None:
            started.append((cmd, cwd))

        monkeypatch.setattr(subprocess_script, "_hydra_subprocess_cmd", command)
        monkeypatch.setattr(subprocess_script.subprocess, "Popen", popen)
        monkeypatch.setattr(HydraConfig, "initialized", staticmethod(lambda: True))
        for key, value in {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29511", "NODE_RANK": "0",
                           "LOCAL_RANK": "0", "WORLD_SIZE": "1"}.items():  # fmt: skip
            monkeypatch.setenv(key, value)  # restored afterwards; the launcher sets them
        launcher = subprocess_script._SubprocessScriptLauncher(
            LightningEnvironment(), num_processes=2, num_nodes=1
        )
        launcher._call_children_scripts()
        assert asked == [1] and started == [(["child", "1"], "/job/cwd")], (asked, started)
        # trainer=ddp_cpu gets that launcher, so use_job_command_for_children replaces it
        trainer = L.Trainer(
            accelerator="cpu", devices=2, strategy="ddp", logger=False, enable_progress_bar=False
        )
        assert isinstance(trainer.strategy.launcher, subprocess_script._SubprocessScriptLauncher)
        use_job_command_for_children(trainer)
        assert subprocess_script._hydra_subprocess_cmd is child_command


def test_tensorboard_logger_prefix_and_join_char(tmp_path: Path) -> None:
    with relied_on(
        "lightning",
        "`lightning.fabric.utilities.logger._add_prefix(metrics, prefix, separator)`, "
        "`TensorBoardLogger._prefix` and `LOGGER_JOIN_CHAR`",
        "src/objectives/run/tensorboard_logger.py",
    ):
        from lightning.fabric.loggers.tensorboard import TensorBoardLogger as FabricLogger
        from lightning.fabric.utilities.logger import _add_prefix

        from objectives.run.tensorboard_logger import TensorBoardLogger

        logger = TensorBoardLogger(str(tmp_path), name="", version=0, prefix="p")
        assert logger._prefix == "p"
        assert _add_prefix({"a": 1}, logger._prefix, logger.LOGGER_JOIN_CHAR) == {"p-a": 1}
        assert _add_prefix({"a": 1}, "", logger.LOGGER_JOIN_CHAR) == {"a": 1}
        # ours replaces Lightning's log_metrics: it still prefixes and writes dicts apart
        source = inspect.getsource(FabricLogger.log_metrics)
        for call in ("_add_prefix(metrics, self._prefix, self.LOGGER_JOIN_CHAR)", "add_scalars"):
            assert call in source, f"Lightning's log_metrics no longer calls {call}"


def test_summary_writer_file_writer(tmp_path: Path) -> None:
    with relied_on(
        "torch",
        "`torch.utils.tensorboard.SummaryWriter._get_file_writer()` with "
        "`add_summary(summary, step)` and `add_event(event)` of tensorboard's protos (the "
        "writer Lightning's TensorBoardLogger holds)",
        "src/objectives/run/tensorboard_logger.py (and run/resume.py, run/hparams.py)",
    ):
        from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader
        from tensorboard.compat.proto.event_pb2 import Event, SessionLog
        from tensorboard.compat.proto.summary_pb2 import Summary

        from objectives.run.tensorboard_logger import TensorBoardLogger

        logger = TensorBoardLogger(str(tmp_path), name="", version=0)
        logger.log_metrics({"a": 1.0, "b": torch.tensor(2.0)}, step=3)  # add_summary, a step
        writer = logger.experiment._get_file_writer()
        writer.add_event(Event(step=5, session_log=SessionLog(status=SessionLog.START)))
        writer.add_summary(Summary(value=[Summary.Value(tag="c", simple_value=4.0)]))
        writer.flush()
        (path,) = tmp_path.rglob("events.out.tfevents.*")
        events = list(LegacyEventFileLoader(str(path)).Load())
        values = [(e.step, v.tag, v.simple_value) for e in events for v in e.summary.value]
        assert values == [(3, "a", 1.0), (3, "b", 2.0), (0, "c", 4.0)], values
        starts = [e.step for e in events if e.session_log.status == SessionLog.START]
        assert starts == [5], starts


# -- hydra, omegaconf -------------------------------------------------------------------------
def test_hydra_args_parser() -> None:
    with relied_on(
        "hydra-core",
        "`hydra._internal.utils.get_args_parser()` (an argparse parser giving `overrides` "
        "and `config_name`)",
        "src/objectives/run/overrides.py",
    ):
        from hydra._internal.utils import get_args_parser

        parser = get_args_parser()
        assert isinstance(parser, argparse.ArgumentParser), type(parser)
        argv = ["-m", "--config-name", "eval", "loss=mse,mae", "+x=1"]
        args, _ = parser.parse_known_args(argv)
        assert args.overrides == ["loss=mse,mae", "+x=1"], args
        assert args.config_name == "eval", args


def test_hydra_main_keeps_config_name_in_its_closure() -> None:
    with relied_on(
        "hydra-core",
        "`hydra.main`'s wrapper holding `config_name` in its closure",
        "src/objectives/run/cli.py (`_config_name`)",
    ):
        import hydra

        from objectives.run.cli import _config_name

        def job(cfg: object) -> None: ...

        main = hydra.main(config_path=None, config_name="train", version_base="1.3")(job)
        assert inspect.getclosurevars(main).nonlocals.get("config_name") == "train"
        assert _config_name(main) == "train"


def test_hydra_partial_is_a_functools_partial_of_the_target() -> None:
    with relied_on(
        "hydra-core",
        "`instantiate` of `_partial_: true` returning a `functools.partial` (or subclass) "
        "whose func/args/keywords are the target and its settings",
        "src/objectives/objective/build.py (`plain_partial`)",
    ):
        from hydra.utils import instantiate

        from objectives.objective.build import plain_partial

        node = {"_target_": "torch.nn.functional.mse_loss", "_partial_": True, "reduction": "sum"}
        made = instantiate(node)
        assert isinstance(made, functools.partial), type(made)
        assert made.func is torch.nn.functional.mse_loss, made.func
        assert made.args == () and made.keywords == {"reduction": "sum"}
        plain = plain_partial(made)
        assert type(plain) is functools.partial
        pred, target = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 0.0])
        assert plain(pred, target) == made(pred, target) == 5.0


def test_omegaconf_full_key_and_node() -> None:
    with relied_on(
        "omegaconf",
        "`Container._get_full_key(key)` and `Container._get_node(key)` (no interpolation resolved)",
        "src/objectives/run/config.py (`missing_keys`)",
    ):
        from omegaconf import Container, ListConfig, OmegaConf

        from objectives.run.config import missing_keys

        cfg = OmegaConf.create({"a": {"b": "???", "c": "${hydra:runtime.cwd}"}, "l": [1, "???"]})
        a = cfg._get_node("a")
        assert isinstance(a, Container), type(a)
        assert a._get_full_key("b") == "a.b"
        a._get_node("c")  # an unresolvable interpolation: not resolved here
        items = cfg._get_node("l")
        assert isinstance(items, ListConfig) and items._get_full_key(1) == "l[1]"
        assert missing_keys(cfg) == ["a.b", "l[1]"]


def test_omegaconf_missing_value_message_names_the_key() -> None:
    with relied_on(
        "omegaconf",
        "`MissingMandatoryValue`'s first line 'Missing mandatory value: <full key>'",
        "src/objectives/run/config.py (`missing_value_error`)",
    ):
        from omegaconf import OmegaConf
        from omegaconf.errors import MissingMandatoryValue

        from objectives.run.config import missing_value_error

        cfg = OmegaConf.create({"data": {"root": "???"}})
        with pytest.raises(MissingMandatoryValue) as caught:
            _ = cfg.data.root
        assert str(caught.value).splitlines()[0] == "Missing mandatory value: data.root"
        assert str(missing_value_error(caught.value)).startswith("data.root is required")


# -- torchmetrics -------------------------------------------------------------------------------
def test_confusion_scores_share_one_matrix() -> None:
    with relied_on(
        "torchmetrics",
        "compute groups sharing one `confmat` state between `MulticlassConfusionMatrix` "
        "subclasses, and `_accuracy_reduce` / `_fbeta_reduce(tp, fp, tn, fn, ...)`",
        "src/objectives/metrics/confusion.py",
    ):
        from torchmetrics import MetricCollection
        from torchmetrics.classification import (
            MulticlassAccuracy,
            MulticlassConfusionMatrix,
            MulticlassF1Score,
        )

        from objectives.metrics.confusion import ConfusionAccuracy, ConfusionF1

        k = 4
        metrics = MetricCollection(
            {
                "acc": ConfusionAccuracy(num_classes=k),
                "f1_macro": ConfusionF1(num_classes=k),
                "confusion_matrix": MulticlassConfusionMatrix(num_classes=k, validate_args=False),
            }
        ).clone(prefix="val/")  # as tasks/base.py keeps them
        generator = torch.Generator().manual_seed(0)
        logits = torch.randn(32, k, generator=generator)
        target = torch.randint(0, k, (32,), generator=generator)
        metrics.update(logits[:16], target[:16])  # the first update forms the groups
        groups = sorted(sorted(g) for g in metrics.compute_groups.values())
        assert groups == [["acc", "confusion_matrix", "f1_macro"]], groups
        members = dict(metrics.items(keep_base=True, copy_state=False))
        assert members["acc"].confmat is members["f1_macro"].confmat, "the matrix is not shared"
        metrics.update(logits[16:], target[16:])  # later ones update one member a group
        values = metrics.compute()
        micro = MulticlassAccuracy(num_classes=k, average="micro")(logits, target)
        macro = MulticlassF1Score(num_classes=k, average="macro")(logits, target)
        torch.testing.assert_close(values["val/acc"], micro)
        torch.testing.assert_close(values["val/f1_macro"], macro)


# -- torch ----------------------------------------------------------------------------------------
def test_foreach_ops() -> None:
    with relied_on(
        "torch",
        "`torch._foreach_sign` / `_foreach_mul` (by a number and by a 0-dim tensor) / "
        "`_foreach_add` / `_foreach_norm`, differentiable",
        "src/objectives/regularizers/norms.py, objective/closed_form.py, "
        "callbacks/parameter_stats.py",
    ):
        params = [torch.tensor([-2.0, 0.0, 3.0], requires_grad=True), torch.ones(2, 2)]
        for got, param in zip(torch._foreach_sign(params), params, strict=True):
            torch.testing.assert_close(got, param.sign())
        doubled = torch._foreach_mul(params, 2.0)
        assert doubled[0].requires_grad, "_foreach_mul is not differentiable"
        for got, param in zip(torch._foreach_mul(params, torch.tensor(3.0)), params, strict=True):
            torch.testing.assert_close(got, param * 3)
        for got, param in zip(torch._foreach_add(doubled, params), params, strict=True):
            torch.testing.assert_close(got, param * 3)
        norms = torch.stack(torch._foreach_norm(params))
        torch.testing.assert_close(norms, torch.stack([p.norm() for p in params]))


def test_dropout_and_norm_base_classes() -> None:
    with relied_on(
        "torch",
        "`nn.modules.dropout._DropoutNd` (with `.p`) and `nn.modules.batchnorm._NormBase` "
        "as the base classes of the dropout and batch/instance-norm layers",
        "src/objectives/callbacks/objective_text.py (`implicit_regularization`), "
        "objective/term.py (`NORM_LAYERS`)",
    ):
        dropout, norm_base = nn.modules.dropout._DropoutNd, nn.modules.batchnorm._NormBase
        layers = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)
        for layer in layers:
            assert issubclass(layer, dropout), layer
        model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.25), nn.Dropout2d(0.5))
        assert sorted(m.p for m in model.modules() if isinstance(m, dropout)) == [0.25, 0.5]
        for layer in (nn.BatchNorm1d, nn.BatchNorm2d, nn.SyncBatchNorm, nn.InstanceNorm2d):
            assert issubclass(layer, norm_base), layer


def test_model_summary_callbacks_keep_max_depth_and_summarize_columns(
    capsys: pytest.CaptureFixture,
) -> None:
    with relied_on(
        "lightning",
        "`ModelSummary._max_depth`, Lightning adding a (Rich)ModelSummary to "
        "`trainer.callbacks` and the static `summarize(summary_data, ..., total_flops)` "
        "with a `FLOPs` column",
        "src/objectives/run/assemble.py (`use_own_model_summary`), callbacks/model_summary.py",
    ):
        from lightning.pytorch.callbacks import ModelSummary, RichModelSummary, RichProgressBar

        trainer = L.Trainer(callbacks=[RichProgressBar()], logger=False)
        (summary,) = [c for c in trainer.callbacks if isinstance(c, ModelSummary)]
        assert type(summary) is RichModelSummary and summary._max_depth == 1
        probe = Probe()
        from lightning.pytorch.utilities.model_summary import summarize

        columns = [name for name, _ in summarize(probe, max_depth=1)._get_summary_data()]
        assert "FLOPs" in columns and "Name" in columns
        params = inspect.signature(ModelSummary.summarize).parameters
        expected = ["summary_data", "total_parameters", "trainable_parameters", "model_size",
                    "total_training_modes", "total_flops"]  # fmt: skip
        assert list(params)[:6] == expected


class Handed:
    """A sized, stateful training iterable (as `InMemoryBatches`): batch i is rows of i; its
    state is the batches handed out; a loaded state skips them once."""

    def __init__(self, events: list[tuple], batches: int = 4) -> None:
        self.events, self.batches, self.handed, self.skip = events, batches, 0, 0

    def __len__(self) -> int:
        return self.batches

    def __iter__(self) -> Iterator[tuple[torch.Tensor]]:
        self.handed, self.skip = self.skip, 0
        for i in range(self.handed, self.batches):
            self.handed += 1
            yield (torch.full((2, 2), float(i)),)

    def state_dict(self) -> dict[str, int]:
        return {"handed": self.handed}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        self.events.append(("load_state_dict",))
        self.skip = state_dict["handed"]


class ResumeProbe(Probe):
    """Records the hooks a resume runs through, in order."""

    def __init__(self, events: list[tuple]) -> None:
        super().__init__()
        self.events = events

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.events.append(("on_load_checkpoint", self.trainer.state.fn))

    def on_train_start(self) -> None:
        self.events.append(("on_train_start",))

    def training_step(self, batch: Any, batch_idx: Any = None) -> torch.Tensor:
        self.events.append(("training_step", int(batch[0][0, 0]), self.trainer.fit_loop.batch_idx))
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch: Any, batch_idx: Any = None) -> None:
        self.events.append(("sanity" if self.trainer.sanity_checking else "validation",))


class Stopped(Exception):
    pass


class SaveAndStop(Callback):
    """Saves a checkpoint at the end of batch 1 of epoch 0 and stops the fit there."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.current_epoch == 0 and trainer.fit_loop.batch_idx == 1:
            trainer.save_checkpoint(self.path, weights_only=False)
            raise Stopped


def test_a_stateful_training_iterable_resumes_mid_epoch_after_the_sanity_check(
    tmp_path: Path,
) -> None:
    with relied_on(
        "lightning",
        "the fit loop saving a `_Stateful` training iterable's `state_dict` in a checkpoint "
        "(`loops.fit_loop.state_dict.combined_loader`), fetching one batch at a time from "
        "one with a length (none ahead), loading the state on a mid-epoch resume before the "
        "first batch, and calling the module's `on_load_checkpoint` (state.fn 'fit') first "
        "and `on_train_start` after the sanity check, just before the first batch",
        "src/objectives/data/batches.py, src/objectives/tasks/random_states.py",
    ):

        def fit(events: list[tuple], callbacks: list, ckpt_path: Path | None = None) -> None:
            trainer = L.Trainer(accelerator="cpu", devices=1, max_epochs=1, logger=False,
                                num_sanity_val_steps=1, limit_val_batches=1,
                                enable_checkpointing=False, enable_progress_bar=False,
                                enable_model_summary=False, callbacks=callbacks,
                                default_root_dir=tmp_path)  # fmt: skip
            trainer.fit(ResumeProbe(events), train_dataloaders=Handed(events),
                        val_dataloaders=Handed([]), ckpt_path=ckpt_path,
                        weights_only=True)  # fmt: skip

        path = tmp_path / "middle.ckpt"
        first: list[tuple] = []
        with pytest.raises(Stopped):
            fit(first, [SaveAndStop(path)])
        # the sanity check (when it runs: not on a mid-epoch resume) comes before on_train_start
        assert [e[0] for e in first][:3] == ["sanity", "on_train_start", "training_step"], first
        saved = torch.load(path, weights_only=True)
        assert saved["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [{"handed": 2}]
        events: list[tuple] = []
        fit(events, [], ckpt_path=path)
        names = [e[0] for e in events]
        assert events[0] == ("on_load_checkpoint", "fit"), events
        order = ["on_load_checkpoint", "load_state_dict", "on_train_start", "training_step"]
        assert names[:4] == order, events
        trained = [e[1:] for e in events if e[0] == "training_step"]
        assert trained == [(2, 2), (3, 3)], "the resumed epoch should go on at batch 2"
        with pytest.raises(RuntimeError, match="not attached to a `Trainer`"):
            _ = L.LightningModule().trainer


def test_fit_sigterm_handler_chains_the_one_it_found_and_puts_it_back(tmp_path: Path) -> None:
    import signal

    from lightning.fabric.plugins.environments import LightningEnvironment
    from lightning.pytorch.strategies.launchers.subprocess_script import (
        _SubprocessScriptLauncher,
    )

    with relied_on(
        "lightning",
        "the fit's SIGTERM handler (`_SignalConnector`): registered before `on_train_start`, "
        "a `_HandlersCompose` whose `signal_handlers` end with the handler it found, which "
        "is put back after the fit; and `_SubprocessScriptLauncher.procs`",
        "src/objectives/run/signals.py and run/preemption.py",
    ):

        def ours(signum: int, frame: object) -> None:
            pass

        class Look(Callback):
            def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
                seen.append(signal.getsignal(signal.SIGTERM))

        seen: list[object] = []
        previous = signal.signal(signal.SIGTERM, ours)
        try:
            trainer = L.Trainer(accelerator="cpu", devices=1, max_epochs=1, logger=False,
                                enable_checkpointing=False, enable_progress_bar=False,
                                enable_model_summary=False, callbacks=[Look()],
                                default_root_dir=tmp_path)  # fmt: skip
            data = DataLoader(TensorDataset(torch.randn(4, 2)), batch_size=2)
            trainer.fit(Probe(), train_dataloaders=data)
            after = signal.getsignal(signal.SIGTERM)
        finally:
            signal.signal(signal.SIGTERM, previous)
        (during,) = seen
        assert during is not ours, "Lightning's handler is not in place at on_train_start"
        assert during.signal_handlers[-1] is ours, during.signal_handlers
        assert after is ours
        launcher = _SubprocessScriptLauncher(LightningEnvironment(), num_processes=2, num_nodes=1)
        assert launcher.procs == [] and callable(launcher.kill)
