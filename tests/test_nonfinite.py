"""The non-finite guard: a NaN term is named with its step and stage; stop, skip or warn."""

from __future__ import annotations

import logging
import math
import subprocess
import sys
from pathlib import Path

import hydra
import lightning as L
import pytest
import torch
from omegaconf import OmegaConf

from objectives.errors import ConfigError, NonFiniteObjective
from objectives.run.assemble import assemble, instantiate_all
from objectives.tasks.nonfinite import check_policy
from tests import nonfinite_terms
from tests.conftest import read_scalars

REPO = Path(__file__).resolve().parents[1]
# the line data (70 training rows) in batches of 10: 7 steps an epoch; input saliency off, as
# it evaluates the objective with gradients outside the training step
RUN = ["data.batch_size=10", "test=false", "callbacks.input_saliency=null"]


def fit_with_bad_term(cfg, first: int, last: int | None = None) -> tuple[L.Trainer, object]:
    """Add the term `boom` (NaN on training calls first..last) and fit; call k is training
    step k − 1."""
    OmegaConf.update(
        cfg, "regularizer.boom",
        {"fn": {"_target_": "tests.nonfinite_terms.nan_on_calls", "_partial_": True,
                "first": first, "last": last}, "weight": 1.0, "symbol": "boom(θ)"},
        force_add=True,
    )  # fmt: skip
    parts = assemble(cfg)
    trainer = hydra.utils.instantiate(
        cfg.trainer, callbacks=instantiate_all(cfg.callbacks), logger=instantiate_all(cfg.logger)
    )
    nonfinite_terms.CALLS["n"] = 0
    trainer.fit(parts.module, datamodule=parts.datamodule)
    return trainer, parts.module


def test_stop_names_the_bad_term_the_step_and_the_last_good_checkpoint(
    compose_cfg, tmp_path: Path
) -> None:
    cfg = compose_cfg(*RUN, "trainer.max_epochs=5")
    with pytest.raises(NonFiniteObjective) as err:
        fit_with_bad_term(cfg, first=16)  # call 16 = step 15, the second step of epoch 2
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("non-finite objective at train step 15 (epoch 2): raw/boom=nan")
    assert "raw/mse" not in message and "raw/l2" not in message  # those stayed finite
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert f"last good checkpoint: {last}" in message
    state = torch.load(last, weights_only=True)
    assert state["epoch"] == 1 and state["global_step"] == 14  # saved before the bad step
    assert all(torch.isfinite(v).all() for v in state["state_dict"].values())


def test_skip_leaves_the_bad_step_out_and_counts_it(compose_cfg, tmp_path: Path) -> None:
    cfg = compose_cfg(*RUN, "trainer.max_epochs=2", "task.nonfinite=skip")
    _, module = fit_with_bad_term(cfg, first=3, last=4)  # steps 2 and 3 of epoch 0
    scalars = read_scalars(tmp_path / "tensorboard")
    assert [v for _, v in scalars["train_epoch/skipped_steps"]] == [2.0, 0.0]
    assert all(math.isfinite(v) for _, v in scalars["train_epoch/objective"])
    assert all(torch.isfinite(p).all() for p in module.parameters())


def test_warn_goes_on_and_says_so_once(compose_cfg, caplog) -> None:
    cfg = compose_cfg(*RUN, "trainer.max_epochs=1", "task.nonfinite=warn")
    with caplog.at_level(logging.WARNING, logger="objectives.tasks.base"):
        trainer, _ = fit_with_bad_term(cfg, first=2, last=2)
    warnings = [r.getMessage() for r in caplog.records if "non-finite" in r.getMessage()]
    assert warnings == [
        "non-finite objective at train step 1 (epoch 0): raw/boom=nan, term/boom=nan, "
        "objective=nan (task.nonfinite=warn: going on)"
    ]
    assert trainer.global_step == 7


def test_an_unknown_policy_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"task.nonfinite='halt' is not a policy; use stop\|skip"):
        check_policy("halt")


@pytest.mark.slow
def test_a_diverging_run_exits_with_one_line(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "train.py", "optimizer.lr=1e30", f"paths.log_dir={tmp_path}",
         "logger=csv", "trainer.enable_progress_bar=false", "callbacks.rich_progress_bar=null"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 1
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in run.stderr
    assert errors[0].startswith("error: non-finite objective at train step 1 (epoch 0): raw/mse=")
