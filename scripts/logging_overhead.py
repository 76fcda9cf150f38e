"""What logging every objective term costs per training step, measured side by side.

In one process, interleaved and repeated, fit the same work (the seed's MLP 5→64→32→1,
MSE + L1 + L2, batch 256, Adam) with:

  none        the objective only: nothing aggregated or logged (a logger is attached,
              so Lightning's own per-step bookkeeping is in every variant)
  default     this project's logging, values to TensorBoard every 10 steps (the default)
  every_step  this project's logging, values to TensorBoard every step
  naive_log   `self.log_dict(every term, on_step=True, on_epoch=True)` each step,
              what a LightningModule usually does

and print steps/s with each variant's time per step relative to `none` (median, min, max).
The first epoch of each fit is a warm-up and is not timed.

    python scripts/logging_overhead.py --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from typing import Any

import lightning as L
from hydra import compose, initialize_config_dir
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger
from torch import Tensor

from objectives.assemble import assemble
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


VARIANTS = {
    "none": (unlogged_step, 10),
    "default": (None, 10),
    "every_step": (None, 1),
    "naive_log": (naive_step, 1),
}


def fit_once(variant: str, epochs: int, rows: int) -> float:
    step_fn, every = VARIANTS[variant]
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
            callbacks=[timer],
        )
        trainer.fit(module, datamodule=parts.datamodule)
    return timer.seconds / timer.steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--rows", type=int, default=16384)
    args = parser.parse_args()
    quiet_irrelevant_warnings()
    import logging

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    L.seed_everything(0, verbose=False)

    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for _ in range(args.rounds):
        for variant in VARIANTS:  # interleaved: machine noise hits every variant alike
            times[variant].append(fit_once(variant, args.epochs, args.rows))
    ratios = {
        v: [t / base for t, base in zip(times[v], times["none"], strict=True)] for v in VARIANTS
    }
    print(f"{'variant':<12} {'steps/s':>9} {'ms/step':>8}   time / none: median [min, max]")
    for v in VARIANTS:
        median = statistics.median(times[v])
        r = ratios[v]
        print(
            f"{v:<12} {1 / median:9.0f} {1000 * median:8.3f}   "
            f"{statistics.median(r):.3f} [{min(r):.3f}, {max(r):.3f}]"
        )


if __name__ == "__main__":
    main()
