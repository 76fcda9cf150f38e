"""This project's training step rate against plain PyTorch loops doing the same work.

In one process, interleaved and repeated (the machine is noisy: compare within a round,
quote medians), the same training work runs as

  a  idiomatic   a PyTorch loop over DataLoader(TensorDataset), batches fetched sample by sample
  b  tuned       a PyTorch loop that slices the tensors a batch at a time
  c  stack       this project: the task module and its objective, per-term logging at the
                 default settings (TensorBoard), the training metrics, and the Trainer
                 train.py builds; no progress bar, no callbacks
  d  no_log      (c) with no logger (nothing written; the per-step values are not copied)
  e  bare        a bare LightningModule: same network, same objective written by hand,
                 same in-memory batches, a default Trainer, nothing logged
  f  callbacks   (c) with the default callbacks that act during training: gradient
                 attribution, per-layer gradient norms, parameter histograms, the
                 TensorBoard layout, saliency and regression figures (`python train.py`
                 without its checkpoints, LR monitor and progress bar)

Work `mlp` (default): the seed's MLP 5→64→32→1 on 65,536 synthetic rows, batch 256, Adam,
J = MSE + 0.1·L1 + 1e-4·L2. Work `cnn`: the seed's CNN on scikit-learn's 1,257 training
digits, batch 64, Adam, J = CE + 1e-4·L2, where each step is bigger.
Each fit's first epoch is a warm-up and is not timed. The script prints samples/s and the
throughput ratios c/a, c/b, c/d, c/e and f/c, f/e (median [min, max] over rounds), then
start-up times:
`train.py --help`, `train.py --cfg job`, and launch-to-first-training-step.

    python scripts/benchmark.py                      # mlp, CPU
    python scripts/benchmark.py --work cnn
    python scripts/benchmark.py --device cuda        # on a GPU machine
    python scripts/benchmark.py --compare logging    # what per-term logging costs
    python scripts/benchmark.py --compare attribution
    python scripts/benchmark.py --compare lightning  # what the stack removes from Lightning
    python scripts/benchmark.py --compare tricks     # what each speed trick still buys
    python scripts/benchmark.py --compare weighting  # each weighting policy's cost a step
    python scripts/benchmark.py --compare guard      # the non-finite guard's cost a step
    python scripts/benchmark.py --compare compile    # model.compile=true against eager (cnn)

`--compare logging`: none (objective only, nothing aggregated or logged), default (terms
written every 10 steps), every_step, naive_log (`self.log_dict` of every term, on_step and
on_epoch, each step). `--compare attribution`: off, every_0 (present but off), every_25 (the
default), every_25+layers (with ParameterStats), every_1. `--compare tricks`: the stack
with its default callbacks (f), and the same with one speed trick taken out at a time
(PlainAttributes, stored step signatures, the CallbackGroup, the null profiler, the
one-event TensorBoard logger): what each still buys. `--compare lightning`: the bare
module (e) as it is, with the stack's fast path for the attributes Lightning sets around
every hook (PlainAttributes), with its null profiler, and with both. `--compare weighting`
(work `two_heads`: the uw_two_heads recipe, 65,536 rows, batch 256, MLP 5→64→32→2, one MSE
term an output): constant (no policy), uncertainty, grad_ratio (mse_b against mse_a at the
last layer), pcgrad. Ratios there are time per step relative to the first variant.
`--compare guard`: the guard off (its per-step work and checks no-ops), `stop` (the
default: a reference kept a step, one read a logging interval), `skip` (the masked update),
and host_read (the guard as it was: `bool(J.isfinite())` every step).
`--compare compile` (work `cnn` unless `--work` says otherwise): the stack without callbacks,
eager and with `model.compile=true`; torch's in-process compile caches are cleared before
every fit, so each compiled fit compiles again (inductor's disk cache is kept). Besides the
step times it prints each variant's warm-up epoch (not timed; the compiled one compiles
there; by round too: with an empty inductor cache, `TORCHINDUCTOR_CACHE_DIR=$(mktemp -d)`,
the first compiles from nothing, later ones read the disk cache) and their difference, the
compile warm-up.

Work `folder` (its own comparison; `--compare` does not apply): ResNet-20 (the cifar_resnet
recipe: J = CE + 5e-5·L2, SGD lr 0.1 momentum 0.9 nesterov, pad-crop + flip) on a 32×32
RGB image folder written once into a temporary folder (`--images` PNGs, 10 classes, a
colour gradient a class plus pixel noise, so each file decodes like a CIFAR PNG), read by
`data=image_folder` with 2 DataLoader workers. Three variants, each from the composed
config's own FileDataModule and its train DataLoader:

  decode  the DataLoader alone, whole epochs, no model: the rate the workers can supply
  plain   a PyTorch loop over that DataLoader: the module's `on_after_batch_transfer`
          (uint8 → normalised floats), the task's own Augment module, forward, CE + L2
          written by hand, backward, SGD with the recipe's settings, the cosine schedule
  stack   the Trainer train.py builds (as c: logged, no callbacks, no progress bar) over
          the same module and DataLoader

Each fit runs `--epochs` epochs of `--steps` training steps (limit_train_batches; the first
epoch a warm-up, not timed). It prints images/s of each (median [min, max] over rounds) and
stack/plain and decode/stack (median [min, max]); rounds alternate the order of plain and
stack.

    python scripts/benchmark.py --work folder    # 1-2 min on 2 idle CPU cores, ~6 when busy
    python scripts/benchmark.py --work folder --steps 8 --rounds 7
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import itertools
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import unittest.mock
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.combined_loader import _shutdown_workers_and_reset_iterator
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

import objectives.run.assemble as assemble_module
from objectives.run.assemble import (
    Assembled,
    assemble,
    build_trainer,
    instantiate_all,
    instantiate_loggers,
)
from objectives.run.blas_threads import keep_cores_for_torch
from objectives.run.cli import quiet_irrelevant_warnings
from objectives.run.config import config_dir
from objectives.run.null_profiler import NullProfiler
from objectives.tasks.base import STEP_METHODS, ObjectiveModule
from objectives.tasks.nonfinite import NonFiniteGuard
from objectives.tasks.plain_attributes import PlainAttributes

REPO = Path(__file__).resolve().parents[1]

WORK = {
    "mlp": [
        "data=synthetic", "data.source.n=65536", "data.batch_size=256", "model=mlp",
        "regularizer=[l1,l2]", "regularizer.l1.weight=0.1", "regularizer.l2.weight=1e-4",
        "optimizer=adam", "optimizer.lr=0.001",
    ],
    "cnn": ["experiment=digits_cnn", "regularizer.l2.weight=1e-4"],
    # two regression outputs, one MSE term each: what weighting policies balance
    "two_heads": [
        "experiment=uw_two_heads", "data.source.n=65536", "data.batch_size=256",
        "model.hidden=[64,32]", "optimizer.lr=0.001",
    ],
    # ResNet-20 on an image folder written by the run (data.root is added then)
    "folder": ["experiment=cifar_resnet", "data=image_folder", "data.num_workers=2"],
}  # fmt: skip
EPOCHS = {"mlp": 3, "cnn": 12, "two_heads": 3, "folder": 2}  # the first is a warm-up
# --compare weighting runs on its own work unless --work says otherwise
DEFAULT_WORK = {"weighting": "two_heads", "compile": "cnn"}


OVERRIDES: list[str] = []  # --override: config overrides applied to every variant


def compose_work(work: str, extra: list[str] = ()) -> Any:
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose(
            "train",
            overrides=[
                *WORK[work],
                "data.val_fraction=0.0",
                "data.test_fraction=0.0",
                "paths.output_dir=unused",
                *OVERRIDES,
                *extra,
            ],
        )


def fresh(work: str, device: str, extra: list[str] = ()) -> Assembled:
    """The data (on `device`) and a freshly initialised module, as the stack builds them."""
    parts = assemble(compose_work(work, extra))
    parts.datamodule.setup("fit")
    x, y = parts.datamodule.splits["train"]
    parts.datamodule.splits["train"] = (x.to(device), y.to(device))
    return parts


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


# the L2 weight of the classification works' J (cifar_resnet: the paper's decay 1e-4 as 5e-5·‖θ‖²)
L2_WEIGHT = {"cnn": 1e-4, "folder": 5e-5}


def objective_by_hand(work: str, net: nn.Module, out: Tensor, y: Tensor) -> Tensor:
    """The same J as the configs, written out as a plain PyTorch user would."""
    params = list(net.parameters())
    if work == "mlp":
        l1 = sum(p.abs().sum() for p in params)
        l2 = sum(p.square().sum() for p in params)
        return F.mse_loss(out, y) + 0.1 * l1 + 1e-4 * l2
    return F.cross_entropy(out, y) + L2_WEIGHT[work] * sum(p.square().sum() for p in params)


# -- plain PyTorch loops -------------------------------------------------------------------
def plain_loop(work: str, device: str, epochs: int, idiomatic: bool) -> float:
    parts = fresh(work, device)
    net = parts.module.model.to(device)
    x, y = parts.datamodule.splits["train"]
    batch = parts.datamodule.batch_size
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    if idiomatic:
        dataset = TensorDataset(x.cpu(), y.cpu())
        loader = DataLoader(dataset, batch_size=batch, shuffle=True, drop_last=True)
    steps, start = 0, 0.0
    for epoch in range(epochs):
        if epoch == 1:
            sync(device)
            start, steps = time.perf_counter(), 0
        if idiomatic:
            batches = ((xb.to(device), yb.to(device)) for xb, yb in loader)
        else:
            order = torch.randperm(len(x), device=x.device)
            xs, ys = x[order], y[order]
            batches = (
                (xs[i : i + batch], ys[i : i + batch]) for i in range(0, len(x) - batch + 1, batch)
            )
        for xb, yb in batches:
            loss = objective_by_hand(work, net, net(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            steps += 1
    sync(device)
    return (time.perf_counter() - start) / steps


# -- Lightning -----------------------------------------------------------------------------
class StepTimer(Callback):
    """Wall time and step count from the start of epoch 1 to the end of training."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.start, self.start_step = 0.0, 0
        self.fit_start, self.warm_up_seconds = 0.0, 0.0

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.fit_start = time.perf_counter()

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.current_epoch == 1:
            sync(self.device)
            self.start, self.start_step = time.perf_counter(), trainer.global_step
            self.warm_up_seconds = self.start - self.fit_start  # epoch 0, compiling included

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        sync(self.device)
        self.seconds_per_step = (time.perf_counter() - self.start) / (
            trainer.global_step - self.start_step
        )


class BareModule(L.LightningModule):
    """What a Lightning user writes by hand: the objective in training_step, nothing logged."""

    def __init__(self, work: str, net: nn.Module) -> None:
        super().__init__()
        self.work, self.net = work, net

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        return objective_by_hand(self.work, self.net, self.net(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=1e-3)


# Trainer settings of every Lightning variant: no validation in the timed work, so no
# checkpoints, and no progress bar (it reads a value from the device every step)
TIMED_RUN = {
    "limit_val_batches": 0,
    "enable_checkpointing": False,
    "enable_progress_bar": False,
    "enable_model_summary": False,
}
# the same for the stack, as config overrides; of the default callbacks, those that act
# only on validation, checkpoints or the progress bar go, every other one stays
STACK_RUN = [
    "++trainer.limit_val_batches=0", "++trainer.enable_checkpointing=false",
    "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
]  # fmt: skip
NOT_TIMED_CALLBACKS = [
    "callbacks.model_checkpoint=null", "callbacks.last_checkpoint=null",
    "callbacks.learning_rate_monitor=null", "callbacks.rich_progress_bar=null",
]  # fmt: skip


def bare_trainer(device: str, epochs: int, callbacks: list[Callback], **settings: Any) -> L.Trainer:
    """What a Lightning user writes: a default Trainer with the timed-run settings."""
    return L.Trainer(
        accelerator="gpu" if device == "cuda" else "cpu",
        devices=1,
        max_epochs=epochs,
        logger=False,
        callbacks=callbacks,
        **{**TIMED_RUN, **settings},
    )


def stack_trainer(
    work: str, device: str, epochs: int, folder: str | None, extra: list[str] = ()
) -> tuple[L.Trainer, StepTimer]:
    """The Trainer train.py builds from the work's config (its callbacks, logger, profiler
    and plugins), with the timed-run settings; no logger when `folder` is None."""
    cfg = compose_work(
        work,
        [
            *STACK_RUN,
            *([] if "callbacks=none" in extra else NOT_TIMED_CALLBACKS),
            f"trainer.max_epochs={epochs}",
            f"trainer.accelerator={'gpu' if device == 'cuda' else 'cpu'}",
            "logger=tensorboard" if folder else "logger=none",
            *([f"logger.tensorboard.save_dir={folder}"] if folder else []),
            *extra,
        ],
    )
    timer = StepTimer(device)
    callbacks = [timer, *instantiate_all(cfg.get("callbacks"))]
    return build_trainer(cfg.trainer, callbacks, instantiate_loggers(cfg)), timer


def stack(
    work: str,
    device: str,
    epochs: int,
    logged: bool = True,
    extra: list[str] = (),
    step_fn: Callable | None = None,
) -> float:
    """The stack with `extra` overrides, its step replaced by `step_fn` when given."""
    parts = fresh(work, device, extra)
    if step_fn is not None:
        parts.module._shared_step = step_fn.__get__(parts.module)
    with tempfile.TemporaryDirectory() as folder:
        trainer, timer = stack_trainer(work, device, epochs, folder if logged else None, extra)
        trainer.fit(parts.module, datamodule=parts.datamodule)
    WARM_UP[0] = timer.warm_up_seconds
    return timer.seconds_per_step


WARM_UP = [0.0]  # the last stack fit's warm-up epoch, in seconds
# --compare compile: each variant's warm-up epochs (the compiled one's includes compiling)
WARM_UPS: dict[str, list[float]] = {}


def compile_variant(compiled: bool) -> Callable[[str, str, int], float]:
    """The stack (no callbacks) with model.compile=true or false; torch's in-process compile
    caches are cleared first, so every compiled fit compiles (the disk cache stays)."""
    name = "compiled" if compiled else "eager"

    def run(work: str, device: str, epochs: int) -> float:
        torch._dynamo.reset()
        setting = f"model.compile={str(compiled).lower()}"
        seconds = stack(work, device, epochs, extra=["callbacks=none", setting])
        WARM_UPS.setdefault(name, []).append(WARM_UP[0])
        return seconds

    return run


def bare(work: str, device: str, epochs: int, module_cls: type | None = None, **settings) -> float:
    parts = fresh(work, device)
    module = (module_cls or BareModule)(work, copy.deepcopy(parts.module.model))
    timer = StepTimer(device)
    trainer = bare_trainer(device, epochs, [timer], **settings)
    # no validation_step: hand it the training batches only
    trainer.fit(module, train_dataloaders=parts.datamodule.train_dataloader())
    return timer.seconds_per_step


# -- what logging and attribution cost --------------------------------------------------------
def unlogged_step(self: Any, batch: Any, stage: str) -> Tensor:
    return self.objective(self.step_outputs(batch), step=self.global_step).total


def naive_step(self: Any, batch: Any, stage: str) -> Tensor:
    value = self.objective(self.step_outputs(batch), step=self.global_step)
    logs = {f"{stage}/objective": value.total}
    logs.update({f"{stage}/term/{k}": v for k, v in value.weighted.items()})
    logs.update({f"{stage}/raw/{k}": v for k, v in value.raw.items()})
    self.log_dict(logs, on_step=True, on_epoch=True, batch_size=len(batch[0]))
    return value.total


def variant(step_fn: Callable | None, extra: list[str]) -> Callable[[str, str, int], float]:
    return lambda w, d, e: stack(w, d, e, extra=extra, step_fn=step_fn)


class PlainAttributesBare(PlainAttributes, BareModule):
    """The bare module with the stack's fast path for Lightning's per-hook attributes."""


# -- each speed trick of the stack, taken out one at a time -----------------------------------
FAST_SETATTR = PlainAttributes.__setattr__


@contextlib.contextmanager
def without_plain_attributes() -> Iterator[None]:
    """Every attribute write takes `nn.Module.__setattr__`, as without the mixin."""
    PlainAttributes.__setattr__ = nn.Module.__setattr__  # type: ignore[method-assign]
    try:
        yield
    finally:
        PlainAttributes.__setattr__ = FAST_SETATTR  # type: ignore[method-assign]


@contextlib.contextmanager
def without_stored_signatures() -> Iterator[None]:
    """Lightning computes the step methods' signatures anew every batch."""
    methods = [
        fn
        for cls in (ObjectiveModule, *ObjectiveModule.__subclasses__())
        for name in STEP_METHODS
        if (fn := cls.__dict__.get(name)) is not None and "__signature__" in fn.__dict__
    ]
    kept = [fn.__dict__.pop("__signature__") for fn in methods]
    try:
        yield
    finally:
        for fn, signature in zip(methods, kept, strict=True):
            fn.__signature__ = signature


@contextlib.contextmanager
def without_callback_group() -> Iterator[None]:
    """The project's callbacks as separate Lightning callbacks."""
    with unittest.mock.patch.object(assemble_module, "group_observers", list):
        yield


@contextlib.contextmanager
def guard_replaced(watch: Callable | None) -> Iterator[None]:
    """The non-finite guard's per-step `watch` replaced (None: the guard off, its checks
    too), to measure what the guard costs a step."""
    saved = NonFiniteGuard.watch, NonFiniteGuard.check
    NonFiniteGuard.watch = watch or (lambda self, *args: None)  # type: ignore[method-assign]
    if watch is None:
        NonFiniteGuard.check = lambda self, trainer: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        NonFiniteGuard.watch, NonFiniteGuard.check = saved  # type: ignore[method-assign]


def host_read_watch(self, trainer, stacked, player, step) -> None:
    """The guard before it kept values for its checks: one host read of J every step."""
    if not bool(stacked[0].isfinite()):
        raise FloatingPointError("non-finite objective")


def trick(context: Callable[[], contextlib.AbstractContextManager] | None = None,
          extra: Sequence[str] = ()) -> Callable[[str, str, int], float]:  # fmt: skip
    """The stack with its default callbacks, inside `context`, with `extra` overrides."""

    def run(work: str, device: str, epochs: int) -> float:
        with context() if context else contextlib.nullcontext():
            return stack(work, device, epochs, extra=list(extra))

    return run


ATTRIBUTION_ONLY = [
    "callbacks.parameter_stats=null", "callbacks.objective_layout=null",
    "callbacks.regression_figures=null", "callbacks.input_saliency=null",
]  # fmt: skip

COMPARISONS: dict[str, dict[str, Callable[[str, str, int], float]]] = {
    "loops": {
        "a_idiomatic": lambda w, d, e: plain_loop(w, d, e, idiomatic=True),
        "b_tuned": lambda w, d, e: plain_loop(w, d, e, idiomatic=False),
        "c_stack": variant(None, ["callbacks=none"]),
        "d_no_log": lambda w, d, e: stack(w, d, e, logged=False, extra=["callbacks=none"]),
        "e_bare": bare,
        "f_callbacks": variant(None, []),
    },
    "logging": {
        "none": variant(unlogged_step, ["callbacks=none"]),
        "default": variant(None, ["callbacks=none"]),
        "every_step": variant(None, ["callbacks=none", "trainer.log_every_n_steps=1"]),
        "naive_log": variant(naive_step, ["callbacks=none", "trainer.log_every_n_steps=1"]),
    },
    "attribution": {
        "off": variant(None, ["callbacks=none"]),
        "every_0": variant(None, [*ATTRIBUTION_ONLY, "callbacks.grad_attribution.every_n_steps=0"]),
        "every_25": variant(None, ATTRIBUTION_ONLY),
        "every_25+layers": variant(None, ATTRIBUTION_ONLY[1:]),
        "every_1": variant(None, [*ATTRIBUTION_ONLY, "callbacks.grad_attribution.every_n_steps=1"]),
    },
    # each speed trick taken out of the stack (default callbacks), one at a time
    "tricks": {
        "stack": trick(),
        "-plain_attributes": trick(without_plain_attributes),
        "-stored_signatures": trick(without_stored_signatures),
        "-callback_group": trick(without_callback_group),
        "-null_profiler": trick(
            extra=["++trainer.profiler._target_=lightning.pytorch.profilers.PassThroughProfiler"]
        ),
        "-one_event_logger": trick(
            extra=["logger.tensorboard._target_=lightning.pytorch.loggers.TensorBoardLogger"]
        ),
    },
    # the non-finite guard: off, each policy, and the host read a step it used to make
    "guard": {
        "off": trick(lambda: guard_replaced(None), ["callbacks=none"]),
        "stop": variant(None, ["callbacks=none"]),
        "skip": variant(None, ["callbacks=none", "task.nonfinite=skip"]),
        "host_read": trick(lambda: guard_replaced(host_read_watch), ["callbacks=none"]),
    },
    # model.compile=true against eager (work cnn unless --work says otherwise)
    "compile": {"eager": compile_variant(False), "compiled": compile_variant(True)},
    # each weighting policy against constant (no policy), on two MSE terms (work two_heads)
    "weighting": {
        "constant": variant(None, ["callbacks=none", "weighting=constant"]),
        "uncertainty": variant(None, ["callbacks=none", "weighting=uncertainty"]),
        "grad_ratio": variant(
            None,
            [
                "callbacks=none",
                "weighting=grad_ratio",
                "weighting.term=mse_b",
                "weighting.reference=mse_a",
            ],
        ),
        "pcgrad": variant(None, ["callbacks=none", "weighting=pcgrad"]),
    },
    # what the stack's Trainer and module remove from Lightning's own per-step cost
    "lightning": {
        "bare": bare,
        "plain_attributes": lambda w, d, e: bare(w, d, e, PlainAttributesBare),
        "null_profiler": lambda w, d, e: bare(w, d, e, profiler=NullProfiler()),
        "both": lambda w, d, e: bare(w, d, e, PlainAttributesBare, profiler=NullProfiler()),
    },
}


def summary(values: list[float], digits: int = 3) -> str:
    median, low, high = statistics.median(values), min(values), max(values)
    return f"{median:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


# -- work `folder`: ResNet-20 on image files decoded by DataLoader workers ---------------------
RECIPE_EPOCHS = 30  # cifar_resnet's trainer.max_epochs: the cosine schedule's T_max


def write_image_folder(root: Path, images: int, classes: int = 10, size: int = 32) -> Path:
    """`images` RGB PNGs of `size`², in `classes` class folders: a colour gradient a class
    plus uniform pixel noise (±24 levels), so a file is about as large as a CIFAR PNG (~2 kB)
    and decodes about as slowly. Seeded: every run writes the same files."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    base = rng.uniform(60, 196, (classes, 3))
    grid = np.linspace(-1, 1, size)
    for index in range(images):
        c = index % classes
        angle = 2 * np.pi * c / classes
        ramp = 40 * (np.cos(angle) * grid[None, :] + np.sin(angle) * grid[:, None])
        noise = rng.uniform(-24, 24, (size, size, 3))
        pixels = np.clip(base[c] + ramp[..., None] + noise, 0, 255).round().astype(np.uint8)
        target = root / f"class_{c}" / f"{index:05d}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels, mode="RGB").save(target)
    return root


def plain_sgd(net: nn.Module) -> tuple[torch.optim.SGD, torch.optim.lr_scheduler.LRScheduler]:
    """The cifar_resnet recipe's optimizer and schedule, as a plain PyTorch user writes them."""
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    return optimizer, torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=RECIPE_EPOCHS)


def shut_down_workers(loader: DataLoader) -> None:
    """Stop a DataLoader's persistent workers now, as Lightning does at the end of a fit."""
    _shutdown_workers_and_reset_iterator(loader)


class FolderWork:
    """The `folder` work's variants over one image folder, each with a freshly composed
    data module and task module (the config's `experiment=cifar_resnet data=image_folder`).
    Each returns seconds a batch from the start of epoch 1 to the end (epoch 0: warm-up).

    The training split's channel statistics are computed by the first data module and
    loaded into every later one (`load_state_dict`, as a resumed run loads them): it saves
    a pass over the folder a variant and times nothing."""

    def __init__(self, root: Path, device: str, epochs: int, steps: int) -> None:
        self.root, self.device, self.epochs, self.steps = root, device, epochs, steps
        self.state: dict[str, Any] | None = None

    def overrides(self) -> list[str]:
        return [f"data.root={self.root}", f"++trainer.limit_train_batches={self.steps}"]

    def fresh(self) -> Assembled:
        parts = assemble(compose_work("folder", self.overrides()))
        if self.state is not None:
            parts.datamodule.load_state_dict(self.state)
        parts.datamodule.setup("fit")
        self.state = parts.datamodule.state_dict()
        return parts

    def decode(self) -> float:
        """The train DataLoader alone, whole epochs, nothing done with the batches."""
        loader = self.fresh().datamodule.train_dataloader()
        start, batches = 0.0, 0
        for epoch in range(self.epochs):
            if epoch == 1:
                start, batches = time.perf_counter(), 0
            loader.sampler.set_epoch(epoch)  # as Lightning does at every epoch's start
            for _ in loader:
                batches += 1
        seconds = (time.perf_counter() - start) / batches
        shut_down_workers(loader)
        return seconds

    def plain(self) -> float:
        """A PyTorch loop over the data module's train DataLoader: its batch conversion, the
        task's own Augment module, the network, J by hand, SGD and the cosine schedule."""
        parts = self.fresh()
        data, module, device = parts.datamodule, parts.module, self.device
        net = module.model.to(device).train()
        augment = module.augment.to(device) if module.augment is not None else None
        optimizer, schedule = plain_sgd(net)
        loader = data.train_dataloader()
        start, steps = 0.0, 0
        for epoch in range(self.epochs):
            if epoch == 1:
                sync(device)
                start, steps = time.perf_counter(), 0
            loader.sampler.set_epoch(epoch)
            for images, labels, problems in itertools.islice(loader, self.steps):
                x, y = data.on_after_batch_transfer(
                    (images.to(device), labels.to(device), problems), 0
                )
                if augment is not None:
                    with torch.no_grad():
                        x = augment(x)
                loss = objective_by_hand("folder", net, net(x), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                steps += 1
            schedule.step()
        sync(device)
        seconds = (time.perf_counter() - start) / steps
        shut_down_workers(loader)
        return seconds

    def stack(self) -> float:
        """The Trainer train.py builds (as variant c: logged, no callbacks, no progress bar)
        fitting the task module on the data module."""
        parts = self.fresh()
        with tempfile.TemporaryDirectory() as folder:
            trainer, timer = stack_trainer(
                "folder", self.device, self.epochs, folder, ["callbacks=none", *self.overrides()]
            )
            trainer.fit(parts.module, datamodule=parts.datamodule)
        return timer.seconds_per_step


FOLDER_VARIANTS = ("decode", "plain", "stack")


def folder_benchmark(
    device: str, rounds: int, epochs: int, steps: int, images: int
) -> dict[str, list[float]]:
    """Seconds a batch of each variant, a value a round; the folder is written once.
    Rounds alternate plain-then-stack and stack-then-plain (decode first in each)."""
    times: dict[str, list[float]] = {name: [] for name in FOLDER_VARIANTS}
    with tempfile.TemporaryDirectory() as folder:
        root = write_image_folder(Path(folder) / "images", images)
        sizes = [f.stat().st_size for f in root.rglob("*.png")]
        print(f"wrote {len(sizes)} 32×32 RGB PNGs (mean {statistics.mean(sizes):.0f} bytes) "
              f"in 10 class folders")  # fmt: skip
        work = FolderWork(root, device, epochs, steps)
        for r in range(rounds):
            order = ("decode", "plain", "stack") if r % 2 == 0 else ("decode", "stack", "plain")
            for name in order:
                torch.manual_seed(0)
                times[name].append(getattr(work, name)())
    return times


def print_folder(times: dict[str, list[float]], batch: int, header: str) -> None:
    print(header)
    labels = {"decode": "decode limit", "plain": "plain loop", "stack": "stack"}
    print(f"{'variant':<14} {'images/s: median [min, max]':>30} {'ms/step':>9}")
    for name in FOLDER_VARIANTS:
        rates = [batch / t for t in times[name]]
        median = statistics.median(times[name])
        print(f"{labels[name]:<14} {summary(rates, digits=1):>30} {1000 * median:9.1f}")
    for name, other in (("stack", "plain"), ("decode", "stack")):
        ratios = [o / x for x, o in zip(times[name], times[other], strict=True)]
        print(f"{name}/{other} throughput: {summary(ratios)}")


# -- start-up ------------------------------------------------------------------------------
class FirstStepClock(Callback):
    """Prints the wall-clock time of the first training batch (for the start-up figure)."""

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.global_step == 0:
            print(f"FIRST_STEP_AT {time.time():.6f}", flush=True)


def timed_command(args: list[str], env: dict | None = None) -> tuple[float, str]:
    start = time.time()
    run = subprocess.run(
        [sys.executable, *args], cwd=REPO, capture_output=True, text=True, env=env, check=True
    )
    return time.time() - start, run.stdout


def start_up(repeats: int) -> dict[str, list[float]]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    first_step = [
        "train.py", "trainer.max_steps=1", "test=false", "logger=none",
        "callbacks.rich_progress_bar=null", "trainer.enable_progress_bar=false",
        "+callbacks.first_step._target_=benchmark.FirstStepClock",
        "paths.log_dir=" + tempfile.mkdtemp(),
    ]  # fmt: skip
    times: dict[str, list[float]] = {"--help": [], "--cfg job": [], "first step": []}
    for _ in range(repeats):
        times["--help"].append(timed_command(["train.py", "--help"])[0])
        times["--cfg job"].append(timed_command(["train.py", "--cfg", "job"])[0])
        start = time.time()
        _, out = timed_command(first_step, env)
        stamp = next(line for line in out.splitlines() if line.startswith("FIRST_STEP_AT"))
        times["first step"].append(float(stamp.split()[1]) - start)
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", choices=sorted(WORK), default=None, help="default mlp")
    parser.add_argument("--compare", choices=sorted(COMPARISONS), default="loops")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=None, help="per fit, warm-up included")
    parser.add_argument("--startup-repeats", type=int, default=3, help="0 skips start-up")
    parser.add_argument(
        "--override", action="append", default=[], help="a config override, e.g. data.source.n=4096"
    )
    parser.add_argument(
        "--steps", type=int, default=4, help="work folder: training steps an epoch (default 4)"
    )
    parser.add_argument(
        "--images", type=int, default=2560, help="work folder: PNGs written (default 2560)"
    )
    args = parser.parse_args(argv)
    args.work = args.work or DEFAULT_WORK.get(args.compare, "mlp")
    if args.work == "folder" and args.compare != "loops":
        parser.error("--work folder compares its own variants (decode, plain, stack): no --compare")
    OVERRIDES[:] = args.override
    WARM_UPS.clear()
    quiet_irrelevant_warnings()
    keep_cores_for_torch()  # as train.py does (numpy's BLAS threads would compete with torch)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    epochs = args.epochs or EPOCHS[args.work]
    if epochs < 2:
        parser.error("--epochs must be at least 2 (the first is a warm-up, not timed)")
    batch = compose_work(args.work).data.batch_size
    if args.work == "folder":
        times = folder_benchmark(args.device, args.rounds, epochs, args.steps, args.images)
        header = (
            f"work=folder device={args.device} rounds={args.rounds} epochs={epochs} "
            f"steps={args.steps} batch={batch} images={args.images} workers=2 "
            f"augment=the task's Augment (pad-crop + flip) in plain and stack "
            f"torch={torch.__version__} lightning={L.__version__} "
            f"threads={torch.get_num_threads()}"
        )
        print_folder(times, batch, header)
        print_start_up(args.startup_repeats)
        return
    variants = COMPARISONS[args.compare]

    times = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, run in variants.items():  # interleaved: noise hits every variant alike
            torch.manual_seed(0)
            times[name].append(run(args.work, args.device, epochs))

    print(f"work={args.work} device={args.device} rounds={args.rounds} epochs={epochs} "
          f"batch={batch} torch={torch.__version__} lightning={L.__version__} "
          f"threads={torch.get_num_threads()}")  # fmt: skip
    print(f"{'variant':<16} {'samples/s':>10} {'ms/step':>8}")
    for name in variants:
        median = statistics.median(times[name])
        print(f"{name:<16} {batch / median:10.0f} {1000 * median:8.3f}")
    if args.compare == "loops":
        for name, other in [
            ("c_stack", o) for o in ("a_idiomatic", "b_tuned", "d_no_log", "e_bare")
        ] + [("f_callbacks", "c_stack"), ("f_callbacks", "e_bare")]:
            ratios = [o / x for x, o in zip(times[name], times[other], strict=True)]
            print(f"{name[0]}/{other[0]} throughput: {summary(ratios)}")
    else:
        base = next(iter(variants))
        for name in variants:
            ratios = [t / b for t, b in zip(times[name], times[base], strict=True)]
            print(f"{name:<16} time per step / {base}: {summary(ratios)}")
    if args.compare == "compile":
        for name, values in WARM_UPS.items():
            print(f"{name:<16} warm-up epoch s: {summary(values, digits=2)}; by round: "
                  + ", ".join(f"{v:.2f}" for v in values))  # fmt: skip
        extra = [c - e for c, e in zip(WARM_UPS["compiled"], WARM_UPS["eager"], strict=True)]
        print(f"compile warm-up (compiled - eager warm-up epoch) s: {summary(extra, digits=2)}")
    print_start_up(args.startup_repeats)


def print_start_up(repeats: int) -> None:
    if repeats:
        for name, values in start_up(repeats).items():
            print(f"start-up {name:<11} {statistics.median(values):.2f} s "
                  f"[{min(values):.2f}, {max(values):.2f}]")  # fmt: skip


if __name__ == "__main__":
    main()
