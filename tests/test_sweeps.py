"""The sweep summary: tables and chart from hand-written job.json files, the ready-made
sweep configs, and one real multirun end to end."""

from __future__ import annotations

import csv
import json
import logging
import math
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf
from tensorboard.plugins.hparams import metadata

from objectives.objective import build_objective
from objectives.run.sweeps.summary import (
    HEADER,
    SweepSummary,
    choose_metric,
    lower_is_better,
    markdown,
    metric_columns,
    summarise,
    varying_overrides,
)
from tests.conftest import compose_with_hydra, read_accumulator

REPO = Path(__file__).resolve().parents[1]
SHARED = ["trainer.max_epochs=2", "logger=csv"]


def write_job(
    sweep: Path,
    job: int,
    overrides: list[str],
    metrics: dict[str, float] | None = None,
    reason: str = "",
    wall_s: float = 1.5,
    primary: str | None = "test/mse",
) -> dict:
    """What job_record.record_job writes, by hand."""
    record = {
        "job": job,
        "overrides": overrides,
        "status": "failed" if reason else "ok",
        "reason": reason,
        "wall_s": wall_s,
        "metrics": metrics or {},
        "primary": primary,
    }
    (sweep / str(job)).mkdir(parents=True)
    (sweep / str(job) / "job.json").write_text(json.dumps(record, allow_nan=True))
    return record


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """Three jobs of `-m optimizer.lr=0.05,0.01,1e30`: two finish, the last one fails.
    Job 1 has the lower test/mse (0.02 < 0.03)."""
    write_job(
        tmp_path,
        0,
        ["optimizer.lr=0.05", *SHARED],
        {"val/objective": 0.5, "test/mse": 0.03, "val/term/mse": 0.4, "val/mse": 0.4},
    )
    write_job(
        tmp_path,
        1,
        ["optimizer.lr=0.01", *SHARED],
        {"test/r2": 0.9, "val/mse": 0.25, "val/objective": 0.25, "test/mse": 0.02},
        wall_s=2.25,
    )
    write_job(tmp_path, 2, ["optimizer.lr=1e+30", *SHARED], reason="loss | became nan")
    return tmp_path


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def test_csv_has_a_row_per_job_and_every_metric_column(sweep: Path) -> None:
    summarise(sweep)
    header, rows = read_csv(sweep / "summary.csv")
    assert header == [
        *HEADER,
        "val/objective",
        "val/mse",
        "val/term/mse",
        "test/mse",
        "test/r2",
    ]
    assert [r["job"] for r in rows] == ["0", "1", "2"]
    assert [r["overrides"] for r in rows] == [
        "optimizer.lr=0.05",
        "optimizer.lr=0.01",
        "optimizer.lr=1e+30",
    ]
    assert [r["status"] for r in rows] == ["ok", "ok", "failed"]
    assert rows[2]["reason"] == "loss | became nan"
    assert float(rows[1]["wall_s"]) == 2.25
    # values round-trip exactly; blank where a job lacks the metric
    assert float(rows[0]["test/mse"]) == 0.03 and float(rows[1]["test/r2"]) == 0.9
    assert rows[0]["test/r2"] == "" and rows[1]["val/term/mse"] == ""
    assert all(rows[2][c] == "" for c in header[len(HEADER) :])


def test_markdown_shows_what_varies_the_task_metrics_and_the_best_job(sweep: Path) -> None:
    summarise(sweep)
    text = (sweep / "summary.md").read_text()
    lines = text.splitlines()
    table = [line for line in lines if line.startswith("|")]
    assert table[0] == (
        "| job | overrides | status | wall | test/mse | val/objective | val/mse | test/r2 |"
    )
    assert table[2] == "| 0 | `optimizer.lr=0.05` | ok | 1.5 s | 0.03 | 0.5 | 0.4 |  |"
    assert table[3] == "| 1 | `optimizer.lr=0.01` | ok | 2.2 s | 0.02 | 0.25 | 0.25 | 0.9 |"
    # the failure's reason, its | escaped so the row keeps its columns
    assert (
        table[4] == "| 2 | `optimizer.lr=1e+30` | failed: loss \\| became nan | 1.5 s |  |  |  |  |"
    )
    assert "val/term/mse" not in text  # per-term columns stay in the CSV
    assert "Every job: `trainer.max_epochs=2` `logger=csv`" in text
    assert "Best by test/mse (lower is better): job 1 (`optimizer.lr=0.01`), 0.02." in lines


def test_chart_is_a_png(sweep: Path) -> None:
    from matplotlib.image import imread

    written = summarise(sweep)
    assert [p.name for p in written] == ["summary.csv", "summary.md", "summary.png"]
    image = imread(sweep / "summary.png")
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def test_varying_overrides_compare_keys_across_jobs() -> None:
    records = [
        {"overrides": ["loss=mse", "model.hidden=[64,32]", "seed=1"]},
        {"overrides": ["loss=mae", "model.hidden=[64,32]", "seed=1", "+extra=1"]},
    ]
    # loss differs; +extra is missing from job 0, so it tells the jobs apart too
    assert varying_overrides(records) == [["loss=mse"], ["loss=mae", "+extra=1"]]
    # a value with '=' in it is still one key
    records = [{"overrides": ["a=x=1", "b=2"]}, {"overrides": ["a=x=2", "b=2"]}]
    assert varying_overrides(records) == [["a=x=1"], ["a=x=2"]]
    # nothing varies in a one-job sweep: the job keeps every override as its label
    assert varying_overrides([{"overrides": ["loss=mse", "seed=1"]}]) == [["loss=mse", "seed=1"]]


def test_metric_columns_put_the_objective_first_then_val_then_test() -> None:
    records = [
        {"metrics": {"test/acc": 1.0, "val/acc": 1.0, "val/objective": 1.0}},
        {"metrics": {"val/term/ce": 1.0, "test/objective": 1.0}},
    ]
    assert metric_columns(records) == [
        "val/objective",
        "val/acc",
        "val/term/ce",
        "test/acc",
        "test/objective",
    ]


def test_chart_metric_is_asked_for_else_the_agreed_primary_else_the_objective() -> None:
    ok, failed = {"status": "ok"}, {"status": "failed"}
    acc = [{**ok, "primary": "test/acc"}, {**ok, "primary": "test/acc"}]
    assert choose_metric(acc) == "test/acc"
    assert choose_metric(acc, "val/f1_macro") == "val/f1_macro"
    # a failed job's primary does not count while some job succeeded
    assert choose_metric([*acc, {**failed, "primary": "test/mse"}]) == "test/acc"
    assert choose_metric([{**ok, "primary": "test/acc"}, {**ok, "primary": "test/mse"}]) == (
        "val/objective"
    )
    assert choose_metric([{**ok, "primary": None}]) == "val/objective"
    assert choose_metric([{**failed, "primary": "test/mse"}]) == "test/mse"
    assert choose_metric([]) == "val/objective"


@pytest.mark.parametrize(
    ("metric", "lower"),
    [
        ("val/objective", True),
        ("test/mse", True),
        ("val/raw/cross_entropy", True),
        ("test/acc", False),
        ("val/knn_acc", False),
        ("test/f1", False),
        ("val/f1_macro", False),
        ("test/r2", False),
        ("test/auc", False),
        ("test/episode_return", False),
        ("train_epoch/return_last_20", False),
        ("test/ndcg_10", False),
        ("val/mrr", False),
    ],
)
def test_direction_follows_the_metric_name(metric: str, lower: bool) -> None:
    assert lower_is_better(metric) is lower
    assert lower_is_better(metric, given=not lower) is (not lower)


def test_nan_value_is_shown_and_never_best(tmp_path: Path) -> None:
    write_job(tmp_path, 0, ["loss=mse"], {"val/objective": 0.5, "test/acc": math.nan}, primary=None)
    write_job(tmp_path, 1, ["loss=mae"], {"val/objective": 0.7, "test/acc": 0.8}, primary=None)
    summarise(tmp_path, metric="test/acc")
    _, rows = read_csv(tmp_path / "summary.csv")
    assert rows[0]["test/acc"] == "nan"
    text = (tmp_path / "summary.md").read_text()
    assert "| 0 | `loss=mse` | ok | 1.5 s | nan | 0.5 |" in text  # test/acc once
    assert "Best by test/acc (higher is better): job 1 (`loss=mae`), 0.8." in text


def test_callback_reads_the_sweep_dir_and_honours_its_arguments(sweep: Path) -> None:
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}})
    SweepSummary(metric="val/objective").on_multirun_end(config)
    assert "Best by val/objective (lower is better): job 1" in (sweep / "summary.md").read_text()
    SweepSummary(metric="val/objective", lower_is_better=False).on_multirun_end(config)
    assert "Best by val/objective (higher is better): job 0" in (sweep / "summary.md").read_text()


def test_all_failed_sweep_still_writes_every_file(tmp_path: Path, caplog) -> None:
    write_job(tmp_path, 0, ["optimizer.lr=1e+30"], reason="non-finite val/objective (nan)")
    write_job(tmp_path, 1, ["optimizer.lr=1e+31"], reason="boom")
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})
    with caplog.at_level(logging.INFO, logger="objectives.run.sweeps.summary"):
        SweepSummary().on_multirun_end(config)
    _, rows = read_csv(tmp_path / "summary.csv")
    assert [(r["status"], r["reason"]) for r in rows] == [
        ("failed", "non-finite val/objective (nan)"),
        ("failed", "boom"),
    ]
    text = (tmp_path / "summary.md").read_text()
    assert "No job finished with a finite test/mse (lower is better)." in text
    assert (tmp_path / "summary.png").stat().st_size > 0
    assert any(r.levelno == logging.WARNING and "every job" in r.message for r in caplog.records)
    assert any("summary.png" in r.message for r in caplog.records)


def test_sweep_without_job_files_warns_and_does_not_raise(tmp_path: Path, caplog) -> None:
    (tmp_path / "0").mkdir()  # a job folder, but the job never recorded itself
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})
    with caplog.at_level(logging.WARNING, logger="objectives.run.sweeps.summary"):
        SweepSummary().on_multirun_end(config)
    header, rows = read_csv(tmp_path / "summary.csv")
    assert header == HEADER and rows == []
    assert "No job of this sweep wrote a job.json." in (tmp_path / "summary.md").read_text()
    assert not (tmp_path / "summary.png").exists()
    assert any("no job" in r.message for r in caplog.records)


def test_empty_markdown_has_no_table() -> None:
    assert "|" not in markdown([], "val/objective", True)


def test_every_multirun_gets_the_summary_callback() -> None:
    cfg = compose_with_hydra()
    callback = instantiate(cfg.hydra.callbacks.sweep_summary)
    assert isinstance(callback, SweepSummary)
    assert callback.metric is None and callback.lower_is_better is None
    cfg = compose_with_hydra(
        "hydra.callbacks.sweep_summary.metric=val/mae",
        "hydra.callbacks.sweep_summary.lower_is_better=false",
    )
    callback = instantiate(cfg.hydra.callbacks.sweep_summary)
    assert (callback.metric, callback.lower_is_better) == ("val/mae", False)


def test_loss_zoo_sweeps_five_losses_on_the_seed_regression() -> None:
    cfg = compose_with_hydra("sweep=loss_zoo")
    losses = cfg.hydra.sweeper.params.loss.split(",")
    assert losses == ["mse", "mae", "huber", "smooth_l1", "log_cosh"]
    assert cfg.data.name == "synthetic" and cfg.model._target_ == "objectives.models.MLP"
    for loss in losses:  # each value is an option that builds a term named after it
        job = compose_with_hydra("sweep=loss_zoo", f"loss={loss}")
        assert build_objective(job.loss, job.regularizer).names == [loss, "l2"]


def test_weight_decay_sweeps_the_l2_weight_from_zero() -> None:
    cfg = compose_with_hydra("sweep=weight_decay")
    weights = cfg.hydra.sweeper.params["regularizer.l2.weight"].split(",")
    assert [float(w) for w in weights] == [0.0, 0.001, 0.01, 0.1]
    assert cfg.data.name == "synthetic" and cfg.model._target_ == "objectives.models.MLP"
    job = compose_with_hydra("sweep=weight_decay", "regularizer.l2.weight=0")
    assert str(build_objective(job.loss, job.regularizer)) == "J(θ) = 1·mse(ŷ, y) + 0·‖θ‖₂²"


@pytest.mark.slow
def test_real_multirun_writes_a_summary_with_its_failed_job(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "train.py",
        "-m",
        "optimizer.lr=0.05,0.01,1e30",
        "trainer.max_epochs=2",
        f"paths.log_dir={tmp_path}",
        "trainer.enable_progress_bar=false",
        "callbacks.rich_progress_bar=null",
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (sweep,) = (tmp_path / "train" / "multiruns").iterdir()
    _, rows = read_csv(sweep / "summary.csv")
    assert [r["status"] for r in rows] == ["ok", "ok", "failed"]
    assert rows[2]["reason"].startswith("non-finite objective at train step 1 (epoch 0): raw/")
    assert rows[2]["overrides"].startswith("optimizer.lr=")
    assert [r["overrides"] for r in rows[:2]] == ["optimizer.lr=0.05", "optimizer.lr=0.01"]
    # the best line names the succeeded job with the lower test/mse, read from the CSV
    best = min(rows[:2], key=lambda r: float(r["test/mse"]))
    text = (sweep / "summary.md").read_text()
    assert f"(lower is better): job {best['job']} (`{best['overrides']}`)" in text
    assert (sweep / "summary.png").stat().st_size > 0
    # TensorBoard's HParams tab: one experiment at the sweep root, a session per finished job
    experiment = read_accumulator(sweep).PluginTagToContent(metadata.PLUGIN_NAME)
    assert list(experiment) == [metadata.EXPERIMENT_TAG]
    columns = metadata.parse_experiment_plugin_data(experiment[metadata.EXPERIMENT_TAG])
    assert "optimizer/lr" in {h.name for h in columns.hparam_infos}
    assert "test/mse" in {m.name.tag for m in columns.metric_infos}
    for job in ("0", "1"):
        content = read_accumulator(sweep / job / "tensorboard").PluginTagToContent(
            metadata.PLUGIN_NAME
        )
        assert metadata.SESSION_START_INFO_TAG in content
        assert metadata.EXPERIMENT_TAG not in content
