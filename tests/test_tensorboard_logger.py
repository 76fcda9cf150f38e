"""The project's TensorBoardLogger writes what Lightning's writes, one event a call."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger as LightningTensorBoardLogger
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

from objectives.run.tensorboard_logger import TensorBoardLogger
from tests.conftest import read_scalars

METRICS = {"train/objective": torch.tensor(1.5), "train/term/mse": 0.25, "train/raw/l1": 3}


def log_twice(logger) -> None:
    logger.log_metrics(METRICS, step=10)
    logger.log_metrics({"train/objective": float("nan"), "train/term/mse": 2.0}, step=20)
    logger.finalize("success")


def events(folder: Path) -> list:
    (path,) = folder.rglob("events.out.tfevents.*")
    return [e for e in EventFileLoader(str(path)).Load() if e.HasField("summary")]


def test_the_same_scalars_as_lightnings_logger(tmp_path: Path) -> None:
    log_twice(TensorBoardLogger(str(tmp_path / "ours"), name="", version=""))
    log_twice(LightningTensorBoardLogger(str(tmp_path / "lightning"), name="", version=""))
    ours, theirs = read_scalars(tmp_path / "ours"), read_scalars(tmp_path / "lightning")
    assert ours.keys() == theirs.keys() == METRICS.keys()
    for tag in ours:
        assert [s for s, _ in ours[tag]] == [s for s, _ in theirs[tag]]
        torch.testing.assert_close(
            torch.tensor([v for _, v in ours[tag]]),
            torch.tensor([v for _, v in theirs[tag]]),
            equal_nan=True,
        )
    assert ours["train/raw/l1"] == [(10, 3.0)]
    assert len(events(tmp_path / "ours")) == 2  # one event a call, not one a value
    assert len(events(tmp_path / "lightning")) == 5


def test_prefix_and_dicts_are_handled_as_lightning_does(tmp_path: Path) -> None:
    logger = TensorBoardLogger(str(tmp_path), name="", version="", prefix="run")
    logger.log_metrics({"loss": 1.0, "pair": {"a": 1.0, "b": 2.0}}, step=1)
    logger.finalize("success")
    scalars = read_scalars(tmp_path)
    assert scalars["run-loss"] == [(1, 1.0)]
    assert {p.name for p in tmp_path.iterdir() if p.is_dir()} == {"run-pair_a", "run-pair_b"}


def test_a_value_that_is_not_a_number_is_refused_in_one_line(tmp_path: Path) -> None:
    logger = TensorBoardLogger(str(tmp_path), name="", version="")
    with pytest.raises(ValueError, match="cannot log train/x='abc' to TensorBoard"):
        logger.log_metrics({"train/x": "abc"}, step=0)
