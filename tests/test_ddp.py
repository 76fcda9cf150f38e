"""Multi-device runs: two CPU processes on gloo (`trainer=ddp_cpu`), as a user starts them.

The check is against the single-process run that does the same arithmetic: DDP with
batch b on 2 ranks steps on exactly the rows one process sees with batch 2b (see
InMemoryBatches), so every epoch-level value must agree to float precision; a loss
scaled by the world size, padded or repeated validation rows, or a reduction that
forgot a rank would all show up here.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from objectives.run.distributed import SharedRunFolderError, rank_suffix, run_stamp
from objectives.run.train import train
from tests.conftest import read_scalars

REPO = Path(__file__).resolve().parents[1]
QUIET = ["trainer.enable_progress_bar=false", "callbacks.rich_progress_bar=null",
         "trainer.enable_model_summary=false"]  # fmt: skip
RUN = [
    "data=synthetic",
    "model=mlp",
    "optimizer=sgd",
    "regularizer=[l1,l2]",
    "trainer.max_epochs=3",
    "test=false",
]
EPOCH_TAGS = ["val/objective", "val/term/mse", "val/raw/l1", "val/mse", "val/r2",
              "train_epoch/objective", "train_epoch/term/l2"]  # fmt: skip


def run_train(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "train.py", *args, *QUIET],
        cwd=cwd, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.mark.slow
def test_two_processes_give_the_single_process_values_in_one_run_folder(
    compose_cfg, tmp_path: Path
) -> None:
    ddp = run_train("trainer=ddp_cpu", "data.batch_size=32", *RUN, f"paths.log_dir={tmp_path}")
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    (folder,) = (tmp_path / "train" / "runs").iterdir()
    assert sorted(p.name for p in folder.glob("*.log")) == ["train.log", "train_rank1.log"]
    assert len(list(folder.glob("**/.hydra"))) == 1
    assert len(list(tmp_path.rglob("events.out.tfevents.*"))) >= 1
    assert {p.parent for p in tmp_path.rglob("events.out.tfevents.*")} == {folder / "tensorboard"}
    distributed = read_scalars(folder / "tensorboard")

    single_cfg = compose_cfg("data.batch_size=64", *RUN, *QUIET, fast=False)
    train(single_cfg)
    single = read_scalars(tmp_path / "tensorboard")

    for tag in EPOCH_TAGS:
        assert [s for s, _ in distributed[tag]] == [s for s, _ in single[tag]], tag
        for (_, got), (_, want) in zip(distributed[tag], single[tag], strict=True):
            assert math.isclose(got, want, rel_tol=1e-5, abs_tol=1e-7), (tag, got, want)
    # per-step values are rank 0's own batch: logged at the same steps, not reduced
    assert [s for s, _ in distributed["train/objective"]] == [
        s for s, _ in single["train/objective"]
    ]


@pytest.mark.slow
def test_a_multirun_job_starts_its_processes_as_that_job_only(tmp_path: Path) -> None:
    """Lightning's own Hydra support re-runs `-m ...` in every child (a sweep per rank)."""
    run = run_train("-m", "trainer=ddp_cpu", "loss=mae", "trainer.max_epochs=1", "test=false",
                    "logger=csv", f"paths.log_dir={tmp_path}")  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    (sweep,) = (tmp_path / "train" / "multiruns").iterdir()
    assert not (tmp_path / "train" / "runs").exists()
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0"]
    job = sweep / "0"
    assert sorted(p.name for p in job.glob("*.log")) == ["train.log", "train_rank1.log"]
    record = json.loads((job / "job.json").read_text())
    assert record["status"] == "ok" and "loss=mae" in record["overrides"]
    assert (job / "csv" / "metrics.csv").is_file()


def test_run_folder_is_shared_by_the_processes_of_one_external_launch(monkeypatch) -> None:
    for key in ("SLURM_NTASKS", "SLURM_JOB_ID", "SLURM_STEP_ID", "TORCHELASTIC_RUN_ID",
                "WORLD_SIZE", "RANK", "SLURM_PROCID", "LOCAL_RANK"):  # fmt: skip
        monkeypatch.delenv(key, raising=False)
    assert run_stamp() != run_stamp()  # one process: the start time, to the microsecond
    assert rank_suffix() == ""

    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("SLURM_NTASKS", "1")
    assert run_stamp().startswith("20")  # an interactive allocation, one task: still a time
    monkeypatch.setenv("SLURM_NTASKS", "4")
    monkeypatch.setenv("SLURM_STEP_ID", "0")
    assert run_stamp() == "slurm-4242.0"
    monkeypatch.setenv("SLURM_PROCID", "3")
    assert rank_suffix() == "_rank3"

    for key in ("SLURM_NTASKS", "SLURM_JOB_ID", "SLURM_STEP_ID", "SLURM_PROCID"):
        monkeypatch.delenv(key)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "abc123")
    monkeypatch.setenv("RANK", "0")
    assert run_stamp() == "torchrun-abc123" and rank_suffix() == ""
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "none")
    with pytest.raises(SharedRunFolderError, match="--rdzv-id"):
        run_stamp()


def test_a_torchrun_launch_without_a_shared_id_stops_with_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "TORCHELASTIC_RUN_ID": "none", "WORLD_SIZE": "2", "RANK": "0"}
    run = subprocess.run(
        [sys.executable, "train.py", f"paths.log_dir={tmp_path}"],
        cwd=REPO, capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        "error: torchrun without a rendezvous id: each process would write its own run "
        "folder; pass --standalone (one node) or --rdzv-id=<id>, or set hydra.run.dir"
    ]
    assert not tmp_path.joinpath("train").exists()
