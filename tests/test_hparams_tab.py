"""The sweep's one HParams experiment, read back with TensorBoard's own reader."""

from __future__ import annotations

from pathlib import Path

from tensorboard.plugins.hparams import metadata

from objectives.run.sweeps.hparams_tab import union_of_settings, write_sweep_experiment
from tests.conftest import read_accumulator

RECORDS = [
    {"hparams": {"loss": "mse", "optimizer/lr": 0.05, "trainer/x": True},
     "metrics": {"val/objective": 1.0, "val/raw/mse": 1.0}},
    {"hparams": {"loss": "huber", "optimizer/lr": 0.01, "loss/huber/fn/delta": 1.0,
                 "trainer/x": True},
     "metrics": {"val/objective": 2.0, "val/raw/huber": 0.5}},
    {"status": "failed", "metrics": {}},
]  # fmt: skip


def test_union_covers_every_jobs_settings_and_metrics() -> None:
    example, discrete, metrics = union_of_settings(RECORDS)
    assert set(example) == {"loss", "optimizer/lr", "loss/huber/fn/delta", "trainer/x"}
    assert discrete == {"loss": ["huber", "mse"], "trainer/x": [True]}
    assert metrics == ["val/objective", "val/raw/huber", "val/raw/mse"]


def test_sweep_experiment_lists_the_union_as_columns(tmp_path: Path) -> None:
    assert write_sweep_experiment(tmp_path, RECORDS) == tmp_path
    content = read_accumulator(tmp_path).PluginTagToContent(metadata.PLUGIN_NAME)
    experiment = metadata.parse_experiment_plugin_data(content[metadata.EXPERIMENT_TAG])
    columns = {info.name for info in experiment.hparam_infos}
    assert columns == {"loss", "optimizer/lr", "loss/huber/fn/delta", "trainer/x"}
    loss = next(info for info in experiment.hparam_infos if info.name == "loss")
    assert [v.string_value for v in loss.domain_discrete.values] == ["huber", "mse"]
    assert [m.name.tag for m in experiment.metric_infos] == [
        "val/objective", "val/raw/huber", "val/raw/mse"
    ]  # fmt: skip


def test_nothing_is_written_when_no_job_recorded_settings(tmp_path: Path) -> None:
    assert write_sweep_experiment(tmp_path, [{"status": "failed"}]) is None
    assert not list(tmp_path.iterdir())
