"""Token-mean losses divide by the real tokens of the whole optimiser step: one SGD step
(lr 1, no momentum, so the weights move by exactly −gradient) on variable-length padded
digit strings must be the same for a batch of 8, for 4 accumulated micro-batches of 2 and
for 2 processes × 2 micro-batches of 2, within 1e-6; the usual per-micro-batch mean
(`task.normalisation=micro_batch`) must differ by more than 1e-3, or the data would not
test anything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from objectives.run.train import train

REPO = Path(__file__).resolve().parents[1]
QUIET = ["trainer.enable_progress_bar=false", "callbacks.rich_progress_bar=null",
         "trainer.enable_model_summary=false", "test=false", "logger=none"]  # fmt: skip
# 8 training strings of 1-5 digits: one optimiser step of 8 an epoch; a tiny CRNN
ONE_STEP = [
    "experiment=digit_strings_ctc",
    "data.source.n_train=8", "data.source.n_val=4", "data.source.n_test=4",
    "model.channels=[4,8]", "model.hidden=8",
    "optimizer=sgd", "optimizer.lr=1.0", "optimizer.momentum=0.0",
    "trainer.max_epochs=1", "trainer.num_sanity_val_steps=0",
    "callbacks.grad_attribution=null", "callbacks.parameter_stats=null",
]  # fmt: skip


def final_weights(folder: Path) -> dict[str, torch.Tensor]:
    (last,) = folder.rglob("last.ckpt")
    return torch.load(last, map_location="cpu", weights_only=True)["state_dict"]


def trained(compose_cfg, folder: Path, *overrides: str) -> dict[str, torch.Tensor]:
    train(compose_cfg(*ONE_STEP, *QUIET, *overrides, fast=False))
    weights = final_weights(folder / "checkpoints")
    (folder / "checkpoints" / "last.ckpt").unlink()
    return weights


def largest_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a if k.startswith("model."))


@pytest.mark.slow
def test_accumulated_micro_batches_step_as_one_batch(compose_cfg, tmp_path: Path) -> None:
    whole = trained(compose_cfg, tmp_path, "data.batch_size=8")
    accumulated = trained(compose_cfg, tmp_path, "data.batch_size=2",
                          "++trainer.accumulate_grad_batches=4")  # fmt: skip
    naive = trained(compose_cfg, tmp_path, "data.batch_size=2", "task.normalisation=micro_batch",
                    "++trainer.accumulate_grad_batches=4")  # fmt: skip
    assert largest_difference(accumulated, whole) < 1e-6
    assert largest_difference(naive, whole) > 1e-3


@pytest.mark.slow
def test_two_processes_step_as_one_process_on_the_global_batch(compose_cfg, tmp_path: Path) -> None:
    runs = {}
    for mode in ("step", "micro_batch"):
        done = subprocess.run(
            [sys.executable, "train.py", "trainer=ddp_cpu", *ONE_STEP, *QUIET,
             "data.batch_size=2", "++trainer.accumulate_grad_batches=2",
             f"task.normalisation={mode}", f"paths.log_dir={tmp_path / mode}"],
            cwd=REPO, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        output = done.stdout + done.stderr
        assert "Batch: 2 rows a device × 2 devices × 2 accumulated = 8 rows" in output
        runs[mode] = final_weights(tmp_path / mode)
    whole = trained(compose_cfg, tmp_path, "data.batch_size=8")
    assert largest_difference(runs["step"], whole) < 1e-6
    assert largest_difference(runs["micro_batch"], whole) > 1e-3
