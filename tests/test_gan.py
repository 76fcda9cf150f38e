"""The GAN task: two players, each with its own objective of named terms, in TensorBoard."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from objectives.errors import ConfigError
from objectives.run.assemble import assemble
from objectives.run.train import train
from tests.conftest import config_error_of, read_accumulator, read_scalars

REPO = Path(__file__).resolve().parents[1]
SHORT = ["experiment=ring_gan", "trainer.max_epochs=2", "+trainer.limit_train_batches=6",
         "task.eval_samples=500"]  # fmt: skip


@pytest.mark.slow
def test_each_player_logs_its_objective_and_terms_with_penalties(
    compose_cfg, tmp_path: Path
) -> None:
    train(compose_cfg(*SHORT, "loss=wgan", "regularizer=[gradient_penalty]", "task.n_critic=2"))
    scalars = read_scalars(tmp_path / "tensorboard")
    for tag in ("train/gen/objective", "train/gen/term/wgan", "train/gen/raw/wgan",
                "train/disc/objective", "train/disc/term/wgan", "train/disc/raw/wgan",
                "train/disc/term/gradient_penalty", "train/disc/raw/gradient_penalty",
                "train_epoch/gen/objective", "val/disc/term/gradient_penalty",
                "val/gen/objective", "val/modes_covered", "val/high_quality",
                "test/disc/objective"):  # fmt: skip
        assert tag in scalars, tag
    # the critic's objective is the sum of its weighted terms, at every logged step
    total = dict(scalars["train/disc/objective"])
    for step, value in total.items():
        parts = dict(scalars["train/disc/term/wgan"])[step]
        parts += dict(scalars["train/disc/term/gradient_penalty"])[step]
        assert value == pytest.approx(parts, rel=1e-5, abs=1e-6)
    penalty = dict(scalars["train/disc/term/gradient_penalty"])
    raw = dict(scalars["train/disc/raw/gradient_penalty"])
    assert all(penalty[s] == pytest.approx(10 * raw[s], rel=1e-5) for s in penalty)  # λ = 10
    assert "val/samples" in read_accumulator(tmp_path / "tensorboard").Tags()["images"]


def test_the_critic_steps_every_batch_and_the_generator_every_n_critic(compose_cfg) -> None:
    import lightning as L

    cfg = compose_cfg(*SHORT, "task.n_critic=3", "trainer.max_epochs=1", "callbacks=none",
                      "logger=none", "test=false")  # fmt: skip
    parts = assemble(cfg)
    trainer = L.Trainer(max_epochs=1, limit_train_batches=6, limit_val_batches=0,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)  # fmt: skip
    trainer.fit(parts.module, datamodule=parts.datamodule)
    gen_optimizer, disc_optimizer = parts.module.optimizers()
    steps = [next(iter(o.optimizer.state.values()))["step"].item()
             for o in (gen_optimizer, disc_optimizer)]  # fmt: skip
    assert steps == [2, 6]


def test_gan_settings_are_checked_before_training(compose_cfg) -> None:
    message = config_error_of(lambda: assemble(compose_cfg(*SHORT, "loss=mse")))
    assert message.startswith("loss 'mse' has no `gen` part, but this task trains gen and disc")
    message = config_error_of(lambda: assemble(compose_cfg(*SHORT, "task.n_critic=0")))
    assert message == "task.n_critic must be a positive integer, got 0"
    wrong_player = ["regularizer=[gradient_penalty]", "regularizer.gradient_penalty.player=critic"]
    message = config_error_of(lambda: assemble(compose_cfg(*SHORT, *wrong_player)))
    assert message == (
        "regularizer.gradient_penalty.player=critic is not a player of this task; "
        "use one of gen, disc"
    )
    with pytest.raises(ConfigError, match="use model=gan_mlp"):
        assemble(compose_cfg(*SHORT, "model=mlp"))


def test_a_gan_loss_does_not_fit_a_one_objective_task(compose_cfg) -> None:
    message = config_error_of(lambda: assemble(compose_cfg("loss=gan_hinge")))
    assert "task 'regression'" in message and message.endswith(
        "loss=huber|log_cosh|mae|mse|quantile|smooth_l1"
    )


@pytest.mark.slow
def test_two_processes_train_a_gan_with_a_gradient_penalty(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "train.py", *SHORT, "loss=wgan", "regularizer=[gradient_penalty]",
         "trainer=ddp_cpu", "trainer.strategy=ddp_find_unused_parameters_true",
         "trainer.max_epochs=1", "test=false", "trainer.enable_progress_bar=false",
         "callbacks.rich_progress_bar=null", f"paths.log_dir={tmp_path}"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    (folder,) = (tmp_path / "train" / "runs").iterdir()
    scalars = read_scalars(folder / "tensorboard")
    assert "train/disc/term/gradient_penalty" in scalars
    assert all(torch.isfinite(torch.tensor(v)) for _, v in scalars["val/disc/objective"])
