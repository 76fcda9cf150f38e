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
"""

from __future__ import annotations

import argparse
import contextlib
import copy
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
}  # fmt: skip
EPOCHS = {"mlp": 3, "cnn": 12, "two_heads": 3}  # the first is a warm-up
# --compare weighting runs on its own work unless --work says otherwise
DEFAULT_WORK = {"weighting": "two_heads"}


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


def objective_by_hand(work: str, net: nn.Module, out: Tensor, y: Tensor) -> Tensor:
    """The same J as the configs, written out as a plain PyTorch user would."""
    params = list(net.parameters())
    if work == "mlp":
        l1 = sum(p.abs().sum() for p in params)
        l2 = sum(p.square().sum() for p in params)
        return F.mse_loss(out, y) + 0.1 * l1 + 1e-4 * l2
    return F.cross_entropy(out, y) + 1e-4 * sum(p.square().sum() for p in params)


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

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.current_epoch == 1:
            sync(self.device)
            self.start, self.start_step = time.perf_counter(), trainer.global_step

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
    return timer.seconds_per_step


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


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} [{min(values):.3f}, {max(values):.3f}]"


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
    args = parser.parse_args(argv)
    args.work = args.work or DEFAULT_WORK.get(args.compare, "mlp")
    OVERRIDES[:] = args.override
    quiet_irrelevant_warnings()
    keep_cores_for_torch()  # as train.py does (numpy's BLAS threads would compete with torch)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    epochs = args.epochs or EPOCHS[args.work]
    variants = COMPARISONS[args.compare]
    batch = compose_work(args.work).data.batch_size

    times: dict[str, list[float]] = {name: [] for name in variants}
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
    if args.startup_repeats:
        for name, values in start_up(args.startup_repeats).items():
            print(f"start-up {name:<11} {statistics.median(values):.2f} s "
                  f"[{min(values):.2f}, {max(values):.2f}]")  # fmt: skip


if __name__ == "__main__":
    main()
