"""A command that fails says why in one `error:` line, exits non-zero, and changes no run it
did not train: a refused resume leaves its run byte for byte as it was, a refused new run
leaves no folder (issue: "Trust", each case of its "Why")."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
import torch
import yaml

from objectives.errors import ConfigError
from objectives.run import checkpoint_io, run_folder
from objectives.run.checkpoints import load_checkpoint
from objectives.run.config import config_dir
from objectives.run.evaluate import main as eval_main
from objectives.run.overrides import check_command_line, flags_first
from objectives.run.resume import resumed_by
from objectives.run.run_folder import check_log_dir, kept_only_if_trained, note_folder
from objectives.run.train import main as train_main
from tests.commands import run_command

QUIET = ["trainer.enable_progress_bar=false", "callbacks.rich_progress_bar=null",
         "trainer.enable_model_summary=false", "test=false"]  # fmt: skip


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """A finished 2-epoch MLP run (hidden [64, 32], the seed's 5 features) to resume."""
    logs = tmp_path_factory.mktemp("trained") / "logs"
    done = run_command(train_main, "data=synthetic", "model=mlp", "trainer.max_epochs=2", *QUIET,
                       f"paths.log_dir={logs}")  # fmt: skip
    assert done.status == 0, done.output[-3000:]
    (run,) = (logs / "train" / "runs").iterdir()
    return run


def test_a_resume_that_does_not_fit_changes_nothing_and_the_run_still_resumes(
    trained_run: Path,
) -> None:
    before = files_of(trained_run)
    last = trained_run / "checkpoints" / "last.ckpt"
    logs = trained_run.parents[2]
    refused = run_command(train_main, f"ckpt_path={last}", "model.hidden=[7]",
                          f"paths.log_dir={logs}")  # fmt: skip
    assert refused.one_line_error, refused.output[-3000:]
    (line,) = refused.errors
    assert "does not fit this config" in line
    assert "model.hidden: [64, 32] in the checkpoint, [7] now" in line
    assert files_of(trained_run) == before  # .hydra/overrides.yaml, the log, the event files

    # the run's own settings come back: the plain resume extends it
    again = run_command(train_main, f"ckpt_path={last}", "trainer.max_epochs=3",
                        f"paths.log_dir={logs}")  # fmt: skip
    assert again.status == 0, again.output[-3000:]
    assert torch.load(last, weights_only=True)["epoch"] == 2


def fake_run(root: Path, name: str, choices: dict[str, object]) -> Path:
    run = root / name
    (run / ".hydra").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.ckpt").write_bytes(b"x")
    hydra = {"hydra": {"runtime": {"choices": choices}}}
    (run / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(hydra))
    (run / ".hydra" / "overrides.yaml").write_text("[]\n")
    return run


def test_ckpt_path_last_resumes_the_newest_run_that_matches_what_is_asked(tmp_path: Path) -> None:
    import os

    vae = fake_run(tmp_path / "digits_vae" / "runs", "v1",
                   {"experiment": "digits_vae", "task": "vae"})  # fmt: skip
    cnn = fake_run(tmp_path / "train" / "runs", "c1", {"experiment": "digits_cnn"})
    line = fake_run(tmp_path / "train" / "runs", "l1", {"experiment": None, "model": "linear"})
    for age, run in enumerate([vae, cnn, line]):  # the regression run is the newest
        os.utime(run / "checkpoints" / "last.ckpt", (1000 + age, 1000 + age))
    asked = ["train.py", "ckpt_path=last", f"paths.log_dir={tmp_path}"]
    configs = config_dir()
    # an experiment's own task_name (digits_vae) is where its runs are
    assert resumed_by([*asked, "experiment=digits_vae"], configs) == vae
    assert resumed_by([*asked, "experiment=digits_cnn"], configs) == cnn
    assert resumed_by(asked, configs) == line  # nothing asked: this task's newest run
    with pytest.raises(
        ConfigError,
        match=r"no run under .* was started with model=cnn "
        r"\(there: l1 \(model=linear\), c1 \(model=\?\), newest first\)",
    ):
        resumed_by([*asked, "model=cnn"], configs)


@pytest.mark.parametrize(
    "overrides",
    [
        ["loss=cross_entropy"],  # refused while the config is checked
        ["scheduler=cosine", "scheduler.T_max=0"],  # refused by torch at start-up
        ["data.batch_size=100000"],  # refused once the Trainer is built
    ],
    ids=["loss", "scheduler", "batch"],
)
def test_a_refused_new_run_leaves_no_folder(tmp_path: Path, overrides: list[str]) -> None:
    logs = tmp_path / "logs"
    refused = run_command(train_main, *overrides, *QUIET, f"paths.log_dir={logs}")
    assert refused.one_line_error, refused.output[-3000:]
    assert not logs.exists()


def test_a_folder_is_kept_once_training_started_and_tidied_before(tmp_path: Path) -> None:
    # refused at fit start, after the loggers wrote their first file: removed
    folder = tmp_path / "logs" / "train" / "runs" / "r"
    with pytest.raises(SystemExit), kept_only_if_trained(None):
        note_folder(folder)
        (folder / "tensorboard").mkdir(parents=True)
        (folder / "tensorboard" / "events.out.tfevents.1").write_bytes(b"e")
        raise SystemExit("error: refused")
    assert not (tmp_path / "logs").exists()
    # failed after training started: the run's own record, kept
    with pytest.raises(SystemExit), kept_only_if_trained(None):
        note_folder(folder)
        folder.mkdir(parents=True)
        run_folder.note_training_started()
        raise SystemExit("error: non-finite objective")
    assert folder.is_dir()


def test_override_grammar_errors_are_one_line(tmp_path: Path) -> None:
    unclosed = run_command(train_main, "model.hidden=[7", f"paths.log_dir={tmp_path}")
    assert unclosed.one_line_error, unclosed.output[-3000:]
    assert "cannot read the override 'model.hidden=[7'" in unclosed.errors[0]
    # `paths.log_dir=/data/my runs` unquoted: the shell makes `runs` an override of its own
    spaced = run_command(train_main, f"paths.log_dir={tmp_path}/my", "runs")
    assert spaced.one_line_error, spaced.output[-3000:]
    assert f'quote the whole override: "paths.log_dir={tmp_path}/my runs"' in spaced.errors[0]
    assert not any(tmp_path.iterdir())


def test_flags_may_follow_overrides(tmp_path: Path) -> None:
    argv = ["loss=mse,mae", "-m", "trainer.max_epochs=1"]
    assert flags_first(argv) == ["-m", "loss=mse,mae", "trainer.max_epochs=1"]
    assert flags_first(["--cfg", "job", "loss=mse"]) == ["--cfg", "job", "loss=mse"]
    check_command_line(flags_first(argv), "train")  # no "unrecognized arguments"
    # as typed: a one-job sweep whose -m comes after an override (argparse refused it)
    swept = run_command(train_main, "loss=mse", "-m", "trainer.max_epochs=1", *QUIET,
                        f"paths.log_dir={tmp_path}")  # fmt: skip
    assert swept.status == 0, swept.output[-3000:]
    (sweep,) = (tmp_path / "train" / "multiruns").iterdir()
    assert json.loads((sweep / "0" / "job.json").read_text())["status"] == "ok"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_a_refused_option_is_named_not_the_last_override(tmp_path: Path) -> None:
    refused = run_command(train_main, "trainer=gpu", "trainer.max_epochs=1",
                          f"paths.log_dir={tmp_path}")  # fmt: skip
    assert refused.one_line_error, refused.output[-3000:]
    assert refused.errors[0].startswith("error: trainer=gpu is refused by lightning: No supported")


def test_files_that_are_not_whole_checkpoints_are_named_as_such(
    trained_run: Path, tmp_path: Path
) -> None:
    log = trained_run / "train.log"
    with pytest.raises(
        ConfigError, match=r"train\.log is not a checkpoint \(a \.ckpt file is a zip"
    ):
        load_checkpoint(log)
    whole = (trained_run / "checkpoints" / "last.ckpt").read_bytes()
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(whole[: len(whole) - 200])
    with pytest.raises(ConfigError, match=r"truncated\.ckpt is truncated"):
        load_checkpoint(truncated)
    headless = tmp_path / "headless.ckpt"
    headless.write_bytes(whole[:300])
    with pytest.raises(ConfigError, match=r"headless\.ckpt is truncated"):
        load_checkpoint(headless)
    for path in (log, truncated):
        refused = run_command(eval_main, f"ckpt_path={path}", f"paths.log_dir={tmp_path / 'e'}",
                              prog="eval.py")  # fmt: skip
        assert refused.one_line_error, refused.output[-3000:]
    assert not (tmp_path / "e").exists()  # a refused evaluation leaves no folder


def test_eval_takes_data_overrides_without_a_plus_and_names_a_misfit(
    trained_run: Path, tmp_path: Path
) -> None:
    last = trained_run / "checkpoints" / "last.ckpt"
    done = run_command(eval_main, f"ckpt_path={last}", "data.batch_size=8",
                       f"paths.log_dir={tmp_path}", prog="eval.py")  # fmt: skip
    assert done.status == 0, done.output[-3000:]
    misfit = run_command(eval_main, f"ckpt_path={last}", "data.source.weights=[1,2]",
                         f"paths.log_dir={tmp_path / 'm'}", prog="eval.py")  # fmt: skip
    assert misfit.one_line_error, misfit.output[-3000:]
    assert "does not fit this config" in misfit.errors[0]


def test_a_log_folder_that_cannot_hold_runs_is_refused_before_hydra(
    tmp_path: Path, monkeypatch
) -> None:
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    for log_dir, said in [(a_file, "is a file, not a folder"),
                          (a_file / "runs", "lies under")]:  # fmt: skip
        refused = run_command(train_main, f"paths.log_dir={log_dir}")
        assert refused.one_line_error, refused.output[-3000:]
        assert said in refused.errors[0]

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(run_folder.tempfile, "mkdtemp", read_only)
    with pytest.raises(ConfigError, match=r"cannot make a folder in .* \(Read-only file system\)"):
        check_log_dir(tmp_path / "logs")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_a_full_disk_while_checkpointing_is_one_line(tmp_path: Path, monkeypatch) -> None:
    def full(obj: object, file: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint_io.torch, "save", full)
    refused = run_command(train_main, "trainer.max_epochs=1", *QUIET,
                          f"paths.log_dir={tmp_path}")  # fmt: skip
    assert refused.one_line_error, refused.output[-3000:]
    assert refused.errors[0].startswith("error: no space left on the device writing ")
    assert "MiB free there" in refused.errors[0]


def test_optuna_with_no_trials_is_refused(tmp_path: Path) -> None:
    refused = run_command(train_main, "-m", "hparams_search=regression_optuna",
                          "hydra.sweeper.n_trials=0", f"paths.log_dir={tmp_path}")  # fmt: skip
    assert refused.one_line_error, refused.output[-3000:]
    assert "hydra.sweeper.n_trials must be a positive integer, got 0" in refused.errors[0]


def test_a_sweep_job_that_fails_on_a_bug_prints_one_line(tmp_path: Path, monkeypatch) -> None:
    from objectives.run import train as train_module

    def broken(cfg):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(train_module, "train", broken)
    swept = run_command(train_main, "-m", "loss=mse,mae", f"paths.log_dir={tmp_path}")
    assert "Traceback" not in swept.output, swept.output[-3000:]
    # no job succeeded: the sweep exits 1 with one line, after writing its summary
    assert swept.status == 1 and len(swept.errors) == 1, swept.output[-3000:]
    assert swept.errors[0].startswith("error: every one of the 2 jobs of the sweep failed: ")
    failed = [line for line in swept.output.splitlines()
              if "[ERROR]" in line and "failed: division by zero" in line]  # fmt: skip
    assert len(failed) == 2  # one line a job
    (sweep,) = (tmp_path / "train" / "multiruns").iterdir()
    record = json.loads((sweep / "0" / "job.json").read_text())
    assert record["status"] == "failed"
    assert "Traceback" in (sweep / "0" / "traceback.txt").read_text()


def test_suggested_fixes_name_keys_that_exist(tmp_path: Path) -> None:
    capacity = run_command(train_main, "experiment=digits_vae", "loss.kl.capacity=-1",
                           f"paths.log_dir={tmp_path}")  # fmt: skip
    assert capacity.one_line_error, capacity.output[-3000:]
    assert "set it with loss.kl.capacity=0.001" in capacity.errors[0]
    assert "capacity.weight" not in capacity.errors[0]


def test_a_library_failure_inside_the_training_loop_is_one_line(tmp_path: Path) -> None:
    boom = "+callbacks.boom._target_=tests.failing_callback.TorchFailsAtStep"
    failed = run_command(train_main, boom,
                         "trainer.max_epochs=1", *QUIET, f"paths.log_dir={tmp_path}")  # fmt: skip
    assert failed.one_line_error, failed.output[-3000:]
    assert failed.errors[0].startswith(
        "error: training stopped at epoch 0, step 1: torch raised RuntimeError: mat1 and mat2"
    )
    assert list((tmp_path / "train" / "runs").iterdir())  # it trained a step: the folder stays


def test_a_sequence_fix_names_a_key_of_the_chosen_model(tmp_path: Path) -> None:
    # gru_lm has no time_stride: the fix names the model that has one
    refused = run_command(train_main, "experiment=markov_lm", "loss=ctc", *QUIET,
                          f"paths.log_dir={tmp_path}")  # fmt: skip
    assert refused.one_line_error, refused.output[-3000:]
    assert "(model=crnn with a smaller model.time_stride)" in refused.errors[0]
    assert "zero_infinity" not in refused.errors[0]  # every one unalignable: no way out there
