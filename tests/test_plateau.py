"""`scheduler=plateau`: torch's ReduceLROnPlateau, stepped after each validation with what
the best checkpoint monitors (val/objective by default)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from objectives.run.assemble import assemble, checked_scheduler
from objectives.run.train import train
from tests.conftest import config_error_of, read_scalars


def plateau_rates(values: list[float], lr: float, factor: float, patience: int,
                  threshold: float) -> list[float]:  # fmt: skip
    """The rate each epoch trains with, by the plateau rule (mode min, threshold mode rel,
    no cooldown) applied to the validation value of each epoch before it: a value counts as
    better only below best·(1 − threshold); after more than `patience` epochs in a row
    that are not, the rate is multiplied by `factor` and the count starts again."""
    rates, best, bad = [lr], float("inf"), 0
    for value in values:
        if value < best * (1 - threshold):
            best, bad = value, 0
        else:
            bad += 1
        if bad > patience:
            lr, bad = lr * factor, 0
        rates.append(lr)
    return rates


def test_the_learning_rate_drops_when_the_validation_objective_stalls(
    compose_cfg, tmp_path: Path
) -> None:
    """Adam at lr 0.05 overshoots the line's fit: val/objective has its best early and
    then rises, so the plateau rule halves the rate a few epochs later, and again."""
    cfg = compose_cfg("scheduler=plateau", "scheduler.patience=2", "scheduler.factor=0.5",
                      "trainer.max_epochs=16", "test=false")  # fmt: skip
    train(cfg)
    scalars = read_scalars(tmp_path / "tensorboard")
    values = [v for _, v in scalars["val/objective"]]
    logged = [v for _, v in scalars["lr-Adam"]]  # LearningRateMonitor: at each epoch's start
    expected = plateau_rates(values, 0.05, 0.5, 2, 1e-4)[: len(logged)]
    assert logged == pytest.approx(expected, rel=1e-6)
    assert min(logged) < 0.05, values  # the test saw a drop, not a constant rate


def test_the_schedule_monitors_what_the_checkpoint_monitors(compose_cfg) -> None:
    cfg = compose_cfg("scheduler=plateau", "callbacks.model_checkpoint.monitor=val/r2",
                      "callbacks.model_checkpoint.mode=max")  # fmt: skip
    module = assemble(cfg).module
    trainer = type("Trainer", (), {"checkpoint_callback": type("C", (), {"monitor": "val/r2"})})
    module._trainer = trainer
    config = module.configure_optimizers()["lr_scheduler"]
    assert config["monitor"] == "val/r2"
    assert isinstance(config["scheduler"], torch.optim.lr_scheduler.ReduceLROnPlateau)
    assert config["scheduler"].mode == "max"
    module._trainer = None  # no trainer (or no monitoring checkpoint): val/objective
    assert module.configure_optimizers()["lr_scheduler"]["monitor"] == "val/objective"


@pytest.mark.parametrize(
    ("override", "message"),
    [("scheduler.factor=1.5", "scheduler.factor must be a number in (0, 1), got 1.5"),
     ("scheduler.factor=0", "scheduler.factor must be a number in (0, 1), got 0"),
     ("scheduler.patience=-1", "scheduler.patience must be an integer ≥ 0, got -1"),
     ("scheduler.min_lr=-0.1", "scheduler.min_lr must be a number ≥ 0, got -0.1")],
)  # fmt: skip
def test_bad_plateau_settings_are_one_line(compose_cfg, override: str, message: str) -> None:
    cfg = compose_cfg("scheduler=plateau", override)
    assert config_error_of(lambda: checked_scheduler(cfg.scheduler, 20)).startswith(message)


def test_checked_scheduler_steps_a_plateau_schedule_with_a_value(compose_cfg) -> None:
    factory = checked_scheduler(compose_cfg("scheduler=plateau").scheduler, horizon=50)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    assert isinstance(factory(optimizer=optimizer), torch.optim.lr_scheduler.ReduceLROnPlateau)
