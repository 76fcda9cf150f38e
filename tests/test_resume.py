"""Resume after a kill gives the same model, in the same run folder and TensorBoard log;
checkpoints are never half-written; a seeded deterministic run repeats bit for bit."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from objectives.errors import ConfigError
from objectives.run import checkpoint_io
from objectives.run.checkpoint_io import AtomicCheckpointIO
from objectives.run.checkpoints import load_checkpoint
from objectives.run.resume import latest_run, resumed_run, with_saved_overrides
from objectives.run.train import train
from tests.conftest import read_scalars

REPO = Path(__file__).resolve().parents[1]
QUIET = ["trainer.enable_progress_bar=false", "callbacks.rich_progress_bar=null",
         "trainer.enable_model_summary=false"]  # fmt: skip
# 30 epochs of the seed's MLP on 700 rows in batches of 128: long enough to kill part-way
RUN = ["data=synthetic", "model=mlp", "data.batch_size=128", "trainer.max_epochs=30",
       "test=false", "trainer.deterministic=true"]  # fmt: skip


def kill_after_epoch(command: list[str], run_root: Path, epoch: int) -> Path:
    """Start `command`, SIGKILL it once a last.ckpt of `epoch` or later exists; return the run."""
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 240
    seen = 0
    try:
        while time.monotonic() < deadline and process.poll() is None:
            found = list(run_root.glob("*/checkpoints/last.ckpt"))
            if found and found[0].stat().st_mtime_ns != seen:
                seen = found[0].stat().st_mtime_ns
                if torch.load(found[0], weights_only=True)["epoch"] >= epoch:
                    process.send_signal(signal.SIGKILL)
                    break
            time.sleep(0.02)
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    (run,) = run_root.iterdir()
    return run


def state_of(checkpoint: Path) -> dict[str, torch.Tensor]:
    return torch.load(checkpoint, weights_only=True)["state_dict"]


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_weights_of_an_uninterrupted_one(
    compose_cfg, tmp_path: Path
) -> None:
    killed_logs = tmp_path / "killed"
    command = [sys.executable, "train.py", *RUN, *QUIET, f"paths.log_dir={killed_logs}"]
    run = kill_after_epoch(command, killed_logs / "train" / "runs", epoch=3)
    for checkpoint in (run / "checkpoints").glob("*.ckpt"):  # every file on disk is whole
        assert torch.load(checkpoint, weights_only=True)["state_dict"]

    # `ckpt_path=last` and nothing else: the run's own overrides come back from .hydra/
    resumed = subprocess.run(
        [sys.executable, "train.py", "ckpt_path=last", f"paths.log_dir={killed_logs}"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert [p.name for p in (killed_logs / "train" / "runs").iterdir()] == [run.name]

    train(compose_cfg(*RUN, *QUIET, fast=False))  # the uninterrupted run, same seed
    assert_resumed_as_uninterrupted(run, tmp_path, last_epoch=29)


def assert_resumed_as_uninterrupted(run: Path, whole_run: Path, last_epoch: int) -> None:
    """The resumed `run` ends with the weights of the uninterrupted `whole_run`, and its one
    TensorBoard log reads as if never interrupted: each epoch once, the same values."""
    whole = state_of(whole_run / "checkpoints" / "last.ckpt")
    again = state_of(run / "checkpoints" / "last.ckpt")
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == last_epoch
    assert whole.keys() == again.keys()
    for name in whole:
        torch.testing.assert_close(again[name], whole[name], rtol=0, atol=1e-6)

    interrupted, uninterrupted = (
        read_scalars(run / "tensorboard"),
        read_scalars(whole_run / "tensorboard"),
    )
    for tag in ("train_epoch/objective", "val/objective", "train/objective"):
        assert [s for s, _ in interrupted[tag]] == [s for s, _ in uninterrupted[tag]], tag
        for (_, a), (_, b) in zip(interrupted[tag], uninterrupted[tag], strict=True):
            assert a == pytest.approx(b, rel=1e-6, abs=1e-9), tag


@pytest.mark.slow
@pytest.mark.parametrize(
    ("switch", "hook", "batch"),
    [
        # just after last.ckpt of a validated epoch is written, before Lightning would
        # write that epoch's train means (they used to be lost: the resume starts after it)
        ("KillAfterCheckpoints", "on_train_epoch_end", 0),
        # after validation, before the checkpoints; and in the middle of the next epoch
        ("KillSwitch", "on_validation_end", 0),
        ("KillSwitch", "on_train_batch_end", 2),
    ],
)
def test_a_run_killed_at_each_moment_of_an_epoch_resumes_without_a_gap(
    compose_cfg, tmp_path: Path, switch: str, hook: str, batch: int
) -> None:
    short = [*RUN, "trainer.max_epochs=6"]
    killed_logs = tmp_path / "killed"
    killed = subprocess.run(
        [sys.executable, "train.py", *short, *QUIET, f"paths.log_dir={killed_logs}",
         f"+callbacks.kill._target_=tests.kill_switch.{switch}", f"+callbacks.kill.hook={hook}",
         "+callbacks.kill.epoch=3", f"+callbacks.kill.batch={batch}",
         f"+callbacks.kill.once_file={tmp_path / 'killed_once'}"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    resumed = subprocess.run(
        [sys.executable, "train.py", "ckpt_path=last", f"paths.log_dir={killed_logs}"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    (run,) = (killed_logs / "train" / "runs").iterdir()
    train(compose_cfg(*short, *QUIET, fast=False))
    assert_resumed_as_uninterrupted(run, tmp_path, last_epoch=5)


def test_resume_finds_the_run_of_a_checkpoint_and_the_newest_run(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    with pytest.raises(ConfigError, match="no run under"):
        latest_run(runs)
    for name in ("a", "b"):
        (runs / name / ".hydra").mkdir(parents=True)
        (runs / name / "checkpoints").mkdir()
        (runs / name / "checkpoints" / "last.ckpt").write_bytes(b"x")
        (runs / name / ".hydra" / "overrides.yaml").write_text(f"- model=mlp\n- seed={ord(name)}\n")
        time.sleep(0.01)
    assert latest_run(runs) == runs / "b"
    assert (
        resumed_run(str(runs / "a" / "checkpoints" / "last.ckpt"), runs) == (runs / "a").resolve()
    )
    assert resumed_run(None, runs) is None
    stray = tmp_path / "elsewhere.ckpt"
    stray.write_bytes(b"x")
    assert resumed_run(str(stray), runs) is None  # not a run's: resumed into a new folder
    with pytest.raises(ConfigError, match="does not exist"):
        resumed_run(str(tmp_path / "missing.ckpt"), runs)


class NotAWeight:
    """Pickled as code: loading it would run this module's code."""


def test_resume_refuses_a_checkpoint_that_needs_code_to_load(tmp_path: Path) -> None:
    path = tmp_path / "evil.ckpt"
    torch.save({"run_config": {}, "global_step": 3, "payload": NotAWeight()}, path)
    with pytest.raises(ConfigError, match="needs arbitrary code to load and was refused"):
        load_checkpoint(str(path))  # as train.py reads a checkpoint to resume


def test_saved_overrides_come_first_and_typed_ones_win(tmp_path: Path) -> None:
    run = tmp_path / "train" / "runs" / "r1"
    (run / ".hydra").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.ckpt").write_bytes(b"x")
    (run / ".hydra" / "overrides.yaml").write_text(
        "- model=mlp\n- trainer.max_epochs=5\n- hydra.job.name=x\n- ckpt_path=old\n"
    )
    config = REPO / "configs"
    argv = ["train.py", "ckpt_path=last", f"paths.log_dir={tmp_path}", "trainer.max_epochs=9"]
    chosen = f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}"  # `last`, as the run it names
    assert with_saved_overrides(argv, config) == ["train.py", "model=mlp", chosen, *argv[2:]]
    plain = ["train.py", "loss=mae"]
    assert with_saved_overrides(plain, config) == plain


def test_checkpoints_are_written_beside_the_target_and_renamed_over_it(
    tmp_path: Path, monkeypatch
) -> None:
    target = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"generation": 1}, target)
    seen = {}
    real_replace = os.replace

    def checking_replace(source: str, destination: Path) -> None:
        # at the moment of the rename the target still holds the whole old checkpoint
        seen["old"] = torch.load(destination, weights_only=True)["generation"]
        seen["same_folder"] = Path(source).parent == Path(destination).parent
        real_replace(source, destination)

    monkeypatch.setattr(checkpoint_io.os, "replace", checking_replace)
    AtomicCheckpointIO().save_checkpoint({"generation": 2}, target)
    assert seen == {"old": 1, "same_folder": True}
    assert torch.load(target, weights_only=True)["generation"] == 2

    def failing_save(obj: object, file: object) -> None:
        file.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint_io.torch, "save", failing_save)
    # one line naming the file, the free space and the way out, not an OSError traceback
    with pytest.raises(ConfigError, match=r"^no space left on the device writing .*last\.ckpt \("):
        AtomicCheckpointIO().save_checkpoint({"generation": 3}, target)
    assert torch.load(target, weights_only=True)["generation"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]  # no temporary left


def test_seeded_deterministic_runs_repeat_bit_for_bit(compose_cfg, tmp_path: Path) -> None:
    values = []
    for attempt in ("a", "b"):
        cfg = compose_cfg("model=mlp", "data=synthetic", "trainer.deterministic=true", "seed=7",
                          "test=false")  # fmt: skip
        cfg.paths.output_dir = str(tmp_path / attempt)
        train(cfg)
        values.append(read_scalars(tmp_path / attempt / "tensorboard"))
    assert values[0].keys() == values[1].keys()
    for tag in ("train/objective", "train_epoch/objective", "val/objective", "val/term/l2"):
        assert values[0][tag] == values[1][tag], tag  # same steps, exactly the same floats
