"""`callbacks.early_stopping.patience=N`: Lightning's EarlyStopping on what the best
checkpoint monitors, off (no callback at all) while the patience is null."""

from __future__ import annotations

from pathlib import Path

import pytest
from lightning.pytorch.callbacks import EarlyStopping

from objectives.run.assemble import instantiate_all
from objectives.run.train import main
from tests.commands import run_command
from tests.conftest import read_scalars

QUIET = ["trainer.enable_progress_bar=false", "callbacks.rich_progress_bar=null",
         "trainer.enable_model_summary=false"]  # fmt: skip


def stop_epoch(values: list[float], patience: int) -> int | None:
    """The epoch (0-based) at which a run validating `values` stops: the first whose
    `patience` validations in a row have not gone below the best before them."""
    best, waited = float("inf"), 0
    for epoch, value in enumerate(values):
        if value < best:
            best, waited = value, 0
        else:
            waited += 1
            if waited >= patience:
                return epoch
    return None


def test_early_stopping_is_off_by_default_and_follows_the_checkpoint(compose_cfg) -> None:
    cfg = compose_cfg(fast=False)
    assert cfg.callbacks.early_stopping.patience is None
    assert not any(isinstance(c, EarlyStopping) for c in instantiate_all(cfg.callbacks))
    cfg = compose_cfg("callbacks.early_stopping.patience=4",
                      "callbacks.model_checkpoint.monitor=val/r2",
                      "callbacks.model_checkpoint.mode=max")  # fmt: skip
    (stopper,) = [c for c in instantiate_all(cfg.callbacks) if isinstance(c, EarlyStopping)]
    assert (stopper.monitor, stopper.mode, stopper.patience) == ("val/r2", "max", 4)


def test_a_run_stops_when_its_validation_objective_stops_improving(tmp_path: Path) -> None:
    """Adam at lr 0.05 overshoots the line's fit after a few epochs: val/objective has its
    best early and then rises; with patience 3 the run ends 3 validations after its best
    (computed here from the series TensorBoard got), long before max_epochs."""
    patience, max_epochs = 3, 40
    outcome = run_command(main, *QUIET, f"trainer.max_epochs={max_epochs}", "test=false",
                          f"callbacks.early_stopping.patience={patience}",
                          f"paths.log_dir={tmp_path}")  # fmt: skip
    assert outcome.status == 0, outcome.output[-3000:]
    (folder,) = (tmp_path / "train" / "runs").iterdir()
    values = [v for _, v in read_scalars(folder / "tensorboard")["val/objective"]]
    expected = stop_epoch(values, patience)
    assert expected is not None and expected < max_epochs - 1, values
    assert len(values) == expected + 1  # no validation after the stop
    best = min(values)
    assert values.index(best) == expected - patience
    summary = outcome.output[outcome.output.index("Done: ") :].splitlines()
    assert summary[0].startswith(f"Done: {expected + 1} epochs, {4 * (expected + 1)} optimizer")
    assert summary[1] == (
        f"Stopped early: val/objective did not improve in the last {patience} validations "
        f"(best {best:.6g})"
    )
    assert outcome.output.count("Stopped early") == 1


@pytest.mark.parametrize(
    ("value", "wanted"),
    [("-1", "a positive integer (null: off), got -1"), ("0", "a positive integer (null: off)"),
     ("abc", "must be an integer")],
)  # fmt: skip
def test_a_bad_patience_is_one_line_naming_it(tmp_path: Path, value: str, wanted: str) -> None:
    outcome = run_command(main, *QUIET, "trainer.max_epochs=1", "test=false",
                          f"callbacks.early_stopping.patience={value}",
                          f"paths.log_dir={tmp_path}")  # fmt: skip
    assert outcome.one_line_error, outcome.output[-3000:]
    assert "callbacks.early_stopping.patience" in outcome.errors[0]
    assert wanted in outcome.errors[0], outcome.errors[0]
