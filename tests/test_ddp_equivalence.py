"""Two processes (`trainer=ddp_cpu`) against one process with the same global batch, per task
family: the final weights must be equal, or the run must stop before training.

`data.batch_size` is per device: 2 processes of batch b step on exactly the rows one process
reads with batch 2b (InMemoryBatches), DDP averages their gradients, and the GAN draws each
process's share of the global batch's noise (GANModule._training_noise). Anything a rank
does on its own (dropout masks, augmentations) is switched off here.

The contrastive recipe takes one plain SGD step with lr 1 (no momentum), so its weights are
w0 − ∇J: equal weights mean the two processes' averaged gradient is the single process's
gradient on the 64 digits, i.e. each process contrasts against the global batch (all 126
negatives, not its own 62) and no world-size factor is left. Adam would hide a factor: its
first step moves every weight by ±lr whatever the gradient's scale.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from objectives.run.train import train
from tests.preset_data import files_for

REPO = Path(__file__).resolve().parents[1]
QUIET = ["trainer.enable_progress_bar=false", "callbacks.rich_progress_bar=null",
         "trainer.enable_model_summary=false", "test=false", "logger=none"]  # fmt: skip
# per family: (the recipe, one process's batch); 2 processes take half of it each
FAMILIES = {
    "seed_linear": (["experiment=seed_linear"], 70),
    "seed_mlp": (["experiment=seed_mlp", "trainer.max_epochs=20"], 700),
    "classification": (["experiment=digits_cnn", "model.dropout=0.0", "trainer.max_epochs=2",
                        "++trainer.limit_train_batches=4", "++trainer.limit_val_batches=1"], 64),
    "contrastive": (["experiment=digits_simclr", "augment=none", "optimizer=sgd",
                     "optimizer.lr=1.0", "optimizer.momentum=0.0", "data.shuffle=false",
                     "trainer.max_steps=1", "++trainer.limit_val_batches=1"], 64),
    # the class directions (ArcFace's own parameters) and in-batch pairs (multi-similarity)
    "metric_learning": (["experiment=digits_arcface", "loss=[arcface,multi_similarity]",
                         "loss.arcface.lr=1.0", "optimizer=sgd", "optimizer.lr=1.0",
                         "optimizer.momentum=0.0", "data.shuffle=false", "trainer.max_steps=1",
                         "++trainer.limit_val_batches=1"], 64),
    "gan": (["experiment=ring_gan", "trainer.max_epochs=2", "++trainer.limit_train_batches=4",
             "task.eval_samples=64"], 256),
}  # fmt: skip


def run_train(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "train.py", *args, *QUIET],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def final_weights(folder: Path) -> dict[str, torch.Tensor]:
    (last,) = folder.rglob("last.ckpt")
    return torch.load(last, map_location="cpu", weights_only=True)["state_dict"]


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_two_processes_train_as_one_process_on_the_global_batch(
    compose_cfg, tmp_path: Path, family: str
) -> None:
    recipe, batch = FAMILIES[family]
    strategy = ["trainer.strategy=ddp_find_unused_parameters_true"] if family == "gan" else []
    ddp = run_train("trainer=ddp_cpu", *strategy, *recipe, f"data.batch_size={batch // 2}",
                    f"paths.log_dir={tmp_path / 'ddp'}")  # fmt: skip
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    output = ddp.stdout + ddp.stderr
    assert f"Batch: {batch // 2} rows a device × 2 devices × 1 accumulated = {batch} rows" in output
    if family == "seed_linear":  # a network small enough to print: once, by the first process
        assert output.count("Fitted parameters (last epoch):") == 1, output[-3000:]

    train(compose_cfg(*recipe, *QUIET, f"data.batch_size={batch}", fast=False))
    single, distributed = final_weights(tmp_path / "checkpoints"), final_weights(tmp_path / "ddp")
    assert single.keys() == distributed.keys()
    for name, want in single.items():
        torch.testing.assert_close(distributed[name], want, rtol=0, atol=1e-5, msg=name)


@pytest.mark.slow
def test_the_seed_line_on_two_processes_stops_before_training_in_one_line(tmp_path) -> None:
    """The recipe's one batch of all 70 training rows is 35 rows a process: no process could
    fill a batch of 70, and before this check the run exited 0 with its initial weights."""
    run = run_train("experiment=seed_linear", "trainer=ddp_cpu", f"paths.log_dir={tmp_path}")
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert lines[-1].startswith(
        "error: data.batch_size=70 leaves each of the 2 processes no training batch: the 70 "
        "training rows of 'line' are 35 a process"
    ), run.stderr[-3000:]
    assert sum(line.startswith("error:") for line in lines) == 1
    assert "Fitted parameters" not in run.stdout + run.stderr
    assert not list(tmp_path.rglob("*.ckpt"))


PRESETS = sorted(p.stem for p in (REPO / "configs" / "experiment").glob("*.yaml"))


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_trains_on_two_processes_or_refuses_in_one_line(
    tmp_path: Path, preset: str
) -> None:
    """A few steps of each recipe under `trainer=ddp_cpu`: at least one optimizer step, or one
    `error:` line before training (e.g. a batch of every training row, which two processes
    cannot each fill)."""
    run = run_train(f"experiment={preset}", *files_for(preset, tmp_path), "trainer=ddp_cpu",
                    "trainer.max_steps=2",
                    "++trainer.limit_val_batches=1", f"paths.log_dir={tmp_path}")  # fmt: skip
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    if run.returncode:
        assert run.returncode == 1 and len(errors) == 1, run.stderr[-3000:]
        assert "Traceback" not in run.stderr, run.stderr[-3000:]
        return
    assert not errors
    (last,) = tmp_path.rglob("last.ckpt")
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] >= 1


@pytest.mark.slow
def test_two_processes_on_an_image_folder_take_the_one_process_gradient(
    compose_cfg, tmp_path: Path
) -> None:
    """File-backed data under DDP: each process's DataLoader (with a worker) reads its own
    share of the global batch (RankSampler), so one SGD step of lr 1 from the same start
    (w − ∇J) gives the weights one process gets on the whole batch."""
    from tests.image_files import write_folder

    root = write_folder(tmp_path / "images", classes=3, per_class=20)
    recipe = ["experiment=digits_cnn", "data=image_folder", f"data.root={root}",
              "data.num_workers=1", "model.dropout=0.0", "optimizer=sgd", "optimizer.lr=1.0",
              "optimizer.momentum=0.0", "trainer.max_steps=1",
              "++trainer.limit_val_batches=1"]  # fmt: skip
    ddp = run_train("trainer=ddp_cpu", *recipe, "data.batch_size=8",
                    f"paths.log_dir={tmp_path / 'ddp'}")  # fmt: skip
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert "Batch: 8 rows a device × 2 devices × 1 accumulated = 16 rows" in ddp.stdout + ddp.stderr
    train(compose_cfg(*recipe, *QUIET, "data.batch_size=16", fast=False))
    single, distributed = final_weights(tmp_path / "checkpoints"), final_weights(tmp_path / "ddp")
    moved = [name for name in single if "weight" in name]
    assert moved
    for name, want in single.items():
        torch.testing.assert_close(distributed[name], want, rtol=0, atol=1e-5, msg=name)
