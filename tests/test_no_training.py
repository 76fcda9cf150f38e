"""A run that trains nothing must never look like a success.

Before the fit: a batch size that leaves a process no training batch, and a limit of zero
epochs or steps, are refused in one line. After it: a fit that made no optimizer step,
whatever the cause, ends the run with one line and a non-zero exit.
"""

from __future__ import annotations

import re

import pytest
from omegaconf import OmegaConf

from objectives.errors import ConfigError, NoTrainingStep
from objectives.run.assemble import assemble
from objectives.run.train import train
from tests.conftest import config_error_of

LINE = ["data.batch_size=70", "test=false", "trainer.max_epochs=2"]


def test_a_batch_no_process_can_fill_is_refused_with_the_rows_per_process(compose_cfg) -> None:
    datamodule = assemble(compose_cfg(*LINE)).datamodule
    datamodule.check_training_batches(world_size=1)  # 70 rows, one batch of 70: fine
    with pytest.raises(ConfigError) as err:
        datamodule.check_training_batches(world_size=2)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(
        "data.batch_size=70 leaves each of the 2 processes no training batch: the 70 training "
        "rows of 'line' are 35 a process (data.batch_size is per device); use "
        "data.batch_size=35 or less, fewer devices (trainer.devices), or data.drop_last=false"
    )
    with pytest.raises(ConfigError, match=r"are 23\.3333 a process.*data.batch_size=23 or less"):
        datamodule.check_training_batches(world_size=3)


def test_keeping_the_last_partial_batch_gives_every_process_a_step(compose_cfg) -> None:
    datamodule = assemble(compose_cfg(*LINE, "data.drop_last=false")).datamodule
    datamodule.check_training_batches(world_size=2)
    datamodule.check_training_batches(world_size=200)  # padded: still a batch a process


@pytest.mark.parametrize("key", ["max_epochs", "max_steps"])
def test_a_limit_of_zero_is_refused_before_anything_starts(compose_cfg, key: str) -> None:
    message = config_error_of(lambda: assemble(compose_cfg(f"trainer.{key}=0")))
    assert message.startswith(f"trainer.{key}=0 trains nothing; use trainer.{key}=1 or more")


def test_the_batch_an_optimizer_step_reads_is_said_at_the_start(compose_cfg, caplog) -> None:
    cfg = compose_cfg(*LINE)
    with caplog.at_level("INFO", logger="objectives"):
        train(cfg)
    assert "Batch: 70 rows an optimizer step" in caplog.messages


def test_a_fit_whose_every_step_was_skipped_ends_in_one_line(compose_cfg) -> None:
    cfg = compose_cfg("data.batch_size=10", "test=false", "trainer.max_epochs=2",
                      "task.nonfinite=skip", "callbacks.input_saliency=null")  # fmt: skip
    OmegaConf.update(
        cfg, "regularizer.boom",
        {"fn": {"_target_": "tests.nonfinite_terms.nan_on_calls", "_partial_": True,
                "first": 1}, "weight": 1.0},
        force_add=True,
    )  # fmt: skip
    with pytest.raises(NoTrainingStep) as err:
        train(cfg)
    assert str(err.value) == (
        "the fit made no optimizer step: all 14 training steps had a non-finite objective "
        "(task.nonfinite=skip)"
    )


def test_a_fit_without_training_batches_ends_in_one_line(compose_cfg) -> None:
    with pytest.raises(NoTrainingStep, match=re.escape("limit_train_batches=0 leaves no training")):
        train(compose_cfg(*LINE, "++trainer.limit_train_batches=0"))


def test_a_resumed_run_that_was_already_done_says_so(compose_cfg, tmp_path) -> None:
    train(compose_cfg(*LINE))
    last = tmp_path / "checkpoints" / "last.ckpt"
    with pytest.raises(
        NoTrainingStep, match=re.escape("already reached trainer.max_epochs=2; raise it")
    ):
        train(compose_cfg(*LINE, f"ckpt_path={last}"))
