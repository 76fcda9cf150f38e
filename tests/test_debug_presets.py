"""The debugging presets `debug=limit`, `debug=profiler` and `debug=anomaly`, each run and
checked by what it is for."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback
from omegaconf import OmegaConf

from objectives.run.train import main, train
from tests.commands import run_command
from tests.conftest import NO_PROGRESS_BAR

QUIET = [*NO_PROGRESS_BAR, "trainer.enable_model_summary=false"]
SEEN: Counter = Counter()  # what the probe callbacks below saw, by event


class BatchCounter(Callback):
    """Counts the batches of each stage (sanity-check batches apart)."""

    def on_train_batch_end(self, trainer, *args) -> None:
        SEEN["train"] += 1

    def on_validation_batch_end(self, trainer, *args) -> None:
        SEEN["sanity" if trainer.sanity_checking else "val"] += 1

    def on_test_batch_end(self, trainer, *args) -> None:
        SEEN["test"] += 1


class AnomalyProbe(Callback):
    """Records whether autograd's anomaly detection is on in the training steps."""

    def on_train_batch_start(self, *args) -> None:
        SEEN[f"anomaly {torch.is_anomaly_enabled()}"] += 1


def with_probe(cfg, probe: type[Callback]):
    OmegaConf.set_struct(cfg, False)
    cfg.callbacks.probe = {"_target_": f"{__name__}.{probe.__name__}"}
    return cfg


def test_limit_runs_a_few_batches_of_each_split(compose_cfg) -> None:
    """400 points in batches of 4: 70 training, 15 validation and 15 test batches, of which
    the preset runs 5 of each split an epoch, for its 3 epochs."""
    SEEN.clear()
    cfg = compose_cfg("debug=limit", "data.source.n=400", "data.batch_size=4", *QUIET, fast=False)
    assert (cfg.trainer.max_epochs, cfg.trainer.limit_train_batches) == (3, 5)
    train(with_probe(cfg, BatchCounter))
    assert SEEN == {"train": 3 * 5, "val": 3 * 5, "test": 5, "sanity": 2}


def test_profiler_writes_its_report_into_the_run_folder(compose_cfg, tmp_path: Path) -> None:
    cfg = compose_cfg("debug=profiler", "trainer.max_epochs=2")
    train(cfg)
    report = (tmp_path / "fit-profiler.txt").read_text()
    assert "Profiler Report" in report
    assert re.search(r"Action\s+\|\s+Mean duration \(s\)", report), report[:2000]
    assert "run_training_epoch" in report and "run_training_batch" in report
    assert "Profiler Report" in (tmp_path / "test-profiler.txt").read_text()


def test_anomaly_turns_on_anomaly_detection_and_the_projects_debug_lines(tmp_path: Path) -> None:
    SEEN.clear()
    outcome = run_command(main, "debug=anomaly", "trainer.max_epochs=2", *QUIET,
                          f"+callbacks.probe._target_={__name__}.AnomalyProbe",
                          f"paths.log_dir={tmp_path}")  # fmt: skip
    assert outcome.status == 0, outcome.output[-3000:]
    assert SEEN == {"anomaly True": 2 * 4}  # every training step of the 2 epochs
    assert not torch.is_anomaly_enabled()  # and off again after the run
    debug = [line for line in outcome.output.splitlines() if "][DEBUG] - " in line]
    names = {re.search(r"\]\[([\w.]+)\]\[DEBUG\]", line).group(1) for line in debug}
    assert names and all(name.startswith("objectives.") for name in names), names
    assert any("callbacks.model_checkpoint: ModelCheckpoint" in line for line in debug)
    assert any("callbacks.early_stopping: off" in line for line in debug)
    assert any("optimizer Adam, no learning-rate schedule" in line for line in debug)
    (folder,) = (tmp_path / "debug" / "runs").iterdir()
    assert "[DEBUG] - callbacks.model_checkpoint" in (folder / "debug.log").read_text()
