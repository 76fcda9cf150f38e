"""Optuna searches (configs/hparams_search/), the joblib launcher and the SLURM launcher.

The compose checks are fast; the `slow` ones run `python train.py -m ...` in a subprocess
from the repository root, as a user would.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.core.utils import JobReturn, JobStatus
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from objectives.run.sweeps.optuna_failures import FailedTrialsToOptuna
from tests.conftest import compose_with_hydra

REPO = Path(__file__).resolve().parents[1]
OPTUNA_SWEEPER = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
QUIET = [
    "trainer.enable_progress_bar=false",
    "callbacks.rich_progress_bar=null",
    "logger=csv",
]

# search -> (direction, optimized metric, searched keys)
SEARCHES = {
    "regression_optuna": (
        "minimize",
        "val/mse",
        {"optimizer.lr", "regularizer.l2.weight", "model.hidden"},
    ),
    "digits_optuna": (
        "maximize",
        "val/acc",
        {"optimizer.lr", "regularizer.l2.weight", "model.dropout", "model.channels"},
    ),
}


def search_space(cfg: DictConfig) -> dict:
    """`hydra.sweeper.params` parsed by the Optuna sweeper itself: name -> distribution."""
    from hydra_plugins.hydra_optuna_sweeper._impl import create_params_from_overrides

    params = [f"{key}={value}" for key, value in cfg.hydra.sweeper.params.items()]
    distributions, fixed = create_params_from_overrides(params)
    assert not fixed, fixed
    return distributions


@pytest.mark.parametrize("name", sorted(SEARCHES))
def test_search_config_composes_into_an_optuna_study(name: str) -> None:
    import optuna

    direction, metric, keys = SEARCHES[name]
    cfg = compose_with_hydra(f"hparams_search={name}")
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_ == OPTUNA_SWEEPER
    assert sweeper.direction == direction
    assert cfg.optimized_metric == metric
    # the metric is the task's headline metric, which the task logs as val/<name>
    assert metric == f"val/{get_class(cfg.task._target_).primary_metric}"
    assert isinstance(instantiate(sweeper.sampler), optuna.samplers.TPESampler)
    assert isinstance(sweeper.sampler.seed, int)
    assert sweeper.n_jobs == 1 and 2 <= sweeper.n_trials <= 20
    assert sweeper.max_failure_rate == 1.0
    assert cfg.hydra.callbacks.failed_trials_to_optuna._target_.endswith("FailedTrialsToOptuna")
    assert cfg.test is False  # the test split stays out of the search

    space = search_space(cfg)
    assert keys <= set(space)
    lr = space["optimizer.lr"]
    assert isinstance(lr, optuna.distributions.LogUniformDistribution)
    assert lr.low < 1e-3 < lr.high
    assert 0.0 in space["regularizer.l2.weight"].choices


@pytest.mark.parametrize("name", sorted(SEARCHES))
def test_every_value_of_the_search_space_is_a_valid_override(name: str) -> None:
    """Each categorical choice composes (the quoted lists become lists); each key exists."""
    import optuna

    cfg = compose_with_hydra(f"hparams_search={name}")
    for key, distribution in search_space(cfg).items():
        assert OmegaConf.select(cfg, key, default="missing") != "missing", key
        if isinstance(distribution, optuna.distributions.CategoricalDistribution):
            for choice in distribution.choices:
                trial = compose_with_hydra(f"hparams_search={name}", f"{key}={choice}")
                value = OmegaConf.select(trial, key)
                if str(choice).startswith("["):
                    assert list(value) == json.loads(choice), (key, choice)


def test_a_non_finite_trial_is_handed_to_optuna_as_a_failure() -> None:
    cfg = OmegaConf.create({"optimized_metric": "val/mse", "hydra": {"job": {"num": 3}}})
    callback = FailedTrialsToOptuna()
    for value, expected in [(math.nan, None), (math.inf, None), (0.25, 0.25)]:
        ret = JobReturn(status=JobStatus.COMPLETED, _return_value=value)
        callback.on_job_end(config=cfg, job_return=ret)
        assert ret.return_value == expected
    failed = JobReturn(status=JobStatus.FAILED, _return_value=RuntimeError("boom"))
    callback.on_job_end(config=cfg, job_return=failed)
    assert isinstance(failed._return_value, RuntimeError)


def test_slurm_launcher_composes_and_renders_an_sbatch_script(tmp_path, monkeypatch) -> None:
    """Not run on SLURM: the composed launcher options, handed to submitit the way the
    plugin does, give the expected `#SBATCH` lines (a fake `srun` stands in for a cluster)."""
    import submitit
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    cfg = compose_with_hydra(
        "hydra/launcher=slurm",
        # with trainer.num_nodes=2 trainer.devices=4 (docs/hparams_search.md)
        "hydra.launcher.nodes=2",
        "hydra.launcher.tasks_per_node=4",
        "hydra.launcher.gpus_per_node=4",
        "hydra.launcher.partition=gpu",
        f"hydra.launcher.submitit_folder={tmp_path}/%j",
        "hydra.launcher.name=train",
    )
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")

    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "srun").write_text("#!/bin/sh\nexit 0\n")
    (fake_bin / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}:{Path(sys.executable).parent}:/usr/bin:/bin")

    params = OmegaConf.to_container(launcher, resolve=True)
    params.pop("_target_")
    executor = submitit.AutoExecutor(
        folder=params.pop("submitit_folder"),
        cluster="slurm",
        slurm_max_num_timeout=params.pop("max_num_timeout"),
    )
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})
    script = executor._executor._make_submission_file_text("python -m submitit.core._submit", "x")
    for line in [
        "--partition=gpu",
        "--nodes=2",
        "--ntasks-per-node=4",
        "--gpus-per-node=4",
        "--cpus-per-task=4",
        "--mem=16GB",
        "--time=60",
    ]:
        assert f"#SBATCH {line}" in script, line


def run_train(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "train.py", "-m", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def only_sweep_dir(log_dir: Path) -> Path:
    sweeps = list((log_dir / "train" / "multiruns").iterdir())
    assert len(sweeps) == 1, sweeps
    return sweeps[0]


def job_records(sweep_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(sweep_dir.glob("*/job.json"))]


@pytest.mark.slow
def test_regression_search_end_to_end(tmp_path: Path) -> None:
    run_train(
        "hparams_search=regression_optuna",
        "hydra.sweeper.n_trials=3",
        "trainer.max_epochs=2",
        f"paths.log_dir={tmp_path}",
        *QUIET,
    )
    sweep_dir = only_sweep_dir(tmp_path)
    results = OmegaConf.load(sweep_dir / "optimization_results.yaml")
    assert set(results.best_params) == set(SEARCHES["regression_optuna"][2])
    assert math.isfinite(results.best_value)
    records = job_records(sweep_dir)
    assert [r["status"] for r in records] == ["ok"] * 3
    assert results.best_value == pytest.approx(min(r["metrics"]["val/mse"] for r in records))


@pytest.mark.slow
def test_a_failed_trial_does_not_end_the_search(tmp_path: Path) -> None:
    """`model.hidden=[<job number>]`: trial 0 asks for a layer of width 0 and fails (NaN);
    Optuna records it as failed and the study goes on to the end."""
    result = run_train(
        "hparams_search=regression_optuna",
        "hydra.sweeper.n_trials=2",
        "trainer.max_epochs=1",
        "model.hidden=[${hydra:job.num}]",
        f"paths.log_dir={tmp_path}",
        *QUIET,
    )
    sweep_dir = only_sweep_dir(tmp_path)
    assert [r["status"] for r in job_records(sweep_dir)] == ["failed", "ok"]
    assert "Optuna records this trial as failed" in result.stdout + result.stderr
    results = OmegaConf.load(sweep_dir / "optimization_results.yaml")
    assert math.isfinite(results.best_value)


@pytest.mark.slow
def test_joblib_launcher_runs_jobs_in_parallel_processes(tmp_path: Path) -> None:
    result = run_train(
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "loss=mse,mae",
        "trainer.max_epochs=2",
        f"paths.log_dir={tmp_path}",
        *QUIET,
    )
    assert "Joblib.Parallel(n_jobs=2" in result.stdout + result.stderr
    sweep_dir = only_sweep_dir(tmp_path)
    for job in ("0", "1"):
        record = json.loads((sweep_dir / job / "job.json").read_text())
        assert record["status"] == "ok", record
