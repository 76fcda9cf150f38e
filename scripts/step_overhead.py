"""What logging and gradient attribution cost per training step, measured side by side.

In one process, interleaved and repeated, fit the same work (the seed's MLP 5→64→32→1,
MSE + L1 + L2, batch 256, Adam) under each variant of a set, and print steps/s and each
variant's time per step relative to the set's first variant (median, min, max). The
first epoch of each fit is a warm-up and is not timed.

--set logging (every variant has a TensorBoard logger attached):
  none         the objective only: nothing aggregated or logged
  default      this project's logging, values to TensorBoard every 10 steps (the default)
  every_step   this project's logging, values to TensorBoard every step
  naive_log    `self.log_dict(every term, on_step=True, on_epoch=True)` each step,
               what a LightningModule usually does

--set attribution (default logging in all):
  off          no attribution callback
  every_0      GradientAttribution(every_n_steps=0): present but switched off
  every_25     GradientAttribution(25), the default
  every_25+layers  the default callbacks: GradientAttribution(25) + ParameterStats(25)
  every_1      GradientAttribution(1): every step

    python scripts/step_overhead.py --set logging --rounds 7 --epochs 6
    python scripts/step_overhead.py --set attribution --rounds 7 --epochs 6
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import lightning as L
from hydra import compose, initialize_config_dir
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger
from torch import Tensor

from objectives.assemble import assemble
from objectives.callbacks import GradientAttribution, ParameterStats
from objectives.cli import quiet_irrelevant_warnings
from objectives.config import config_dir


class StepTimer(Callback):
    """Wall time and step count from the start of epoch 1 to the end of training."""

    def __init__(self) -> None:
        self.start = self.start_step = None

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.current_epoch == 1:
            self.start, self.start_step = time.perf_counter(), trainer.global_step

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.seconds = time.perf_counter() - self.start
        self.steps = trainer.global_step - self.start_step


def unlogged_step(self: Any, batch: Any, stage: str) -> Tensor:
    return self.objective(self.step_outputs(batch), step=self.global_step).total


def naive_step(self: Any, batch: Any, stage: str) -> Tensor:
    value = self.objective(self.step_outputs(batch), step=self.global_step)
    logs = {f"{stage}/objective": value.total}
    logs.update({f"{stage}/term/{k}": v for k, v in value.weighted.items()})
    logs.update({f"{stage}/raw/{k}": v for k, v in value.raw.items()})
    self.log_dict(logs, on_step=True, on_epoch=True, batch_size=len(batch[0]))
    return value.total


Variant = tuple[Callable | None, int, Callable[[], list[Callback]]]
SETS: dict[str, dict[str, Variant]] = {
    "logging": {
        "none": (unlogged_step, 10, list),
        "default": (None, 10, list),
        "every_step": (None, 1, list),
        "naive_log": (naive_step, 1, list),
    },
    "attribution": {
        "off": (None, 10, list),
        "every_0": (None, 10, lambda: [GradientAttribution(0)]),
        "every_25": (None, 10, lambda: [GradientAttribution(25)]),
        "every_25+layers": (None, 10, lambda: [GradientAttribution(25), ParameterStats(25)]),
        "every_1": (None, 10, lambda: [GradientAttribution(1)]),
    },
}


def fit_once(variant: Variant, epochs: int, rows: int) -> float:
    step_fn, every, callbacks = variant
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                "data=synthetic",
                f"data.source.n={rows}",
                "data.batch_size=256",
                "data.val_fraction=0.0",
                "data.test_fraction=0.0",
                "model=mlp",
                "regularizer=[l1,l2]",
                "optimizer.lr=0.01",
                "paths.output_dir=unused",
            ],
        )
    parts = assemble(cfg)
    module = parts.module
    if step_fn is not None:
        module._shared_step = step_fn.__get__(module)
    with tempfile.TemporaryDirectory() as folder:
        timer = StepTimer()
        trainer = L.Trainer(
            accelerator="cpu",
            max_epochs=epochs,
            logger=TensorBoardLogger(folder, name="", version=""),
            log_every_n_steps=every,
            limit_val_batches=0,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            callbacks=[timer, *callbacks()],
        )
        trainer.fit(module, datamodule=parts.datamodule)
    return timer.seconds / timer.steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=sorted(SETS), default="logging")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--rows", type=int, default=16384)
    args = parser.parse_args()
    quiet_irrelevant_warnings()
    import logging

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    L.seed_everything(0, verbose=False)

    variants = SETS[args.set]
    base = next(iter(variants))
    times: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(args.rounds):
        for name, variant in variants.items():  # interleaved: noise hits every variant alike
            times[name].append(fit_once(variant, args.epochs, args.rows))
    ratios = {v: [t / b for t, b in zip(times[v], times[base], strict=True)] for v in variants}
    print(f"{'variant':<16} {'steps/s':>9} {'ms/step':>8}   time / {base}: median [min, max]")
    for v in variants:
        median = statistics.median(times[v])
        r = ratios[v]
        print(
            f"{v:<16} {1 / median:9.0f} {1000 * median:8.3f}   "
            f"{statistics.median(r):.3f} [{min(r):.3f}, {max(r):.3f}]"
        )


if __name__ == "__main__":
    main()
