"""experiment=cifar_resnet end to end through the file path: real handwriting written as PNG
files (scripts/digits_images.py), and tiny CIFAR files in both formats. The full-size run
(1,797 digits, 30 epochs: test accuracy 0.989 in 2 min 33 s) is in docs/benchmarks.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from objectives.run.train import train
from tests.conftest import read_scalars
from tests.scripts import script
from tests.test_train import assert_objective_is_sum_of_terms

QUIET = ["trainer.enable_progress_bar=false", "callbacks.rich_progress_bar=null",
         "trainer.enable_model_summary=false"]  # fmt: skip


@pytest.mark.slow
def test_the_resnet_recipe_learns_real_handwriting_from_png_files(compose_cfg, tmp_path) -> None:
    """The first 900 digits as 16×16 RGB PNGs (ten class folders; a quarter of the full
    run's pixels, so the crop shifts by up to 2, not 4), the recipe as it is but for a
    shorter schedule of smaller batches: every term logged, and the digits learnt."""
    root = script("digits_images").write_digits(tmp_path / "digits", size=16, count=900)
    cfg = compose_cfg("experiment=cifar_resnet", "data=image_folder", f"data.root={root}",
                      "augment.crop.size_pad=2", "data.batch_size=64", "trainer.max_epochs=20",
                      *QUIET, fast=False)  # fmt: skip
    metrics = train(cfg)
    assert metrics["test/acc"] >= 0.9, metrics
    scalars = read_scalars(tmp_path / "tensorboard")
    for stage in ("train", "train_epoch", "val", "test"):
        assert_objective_is_sum_of_terms(scalars, stage, ["cross_entropy", "l2"])
    assert {"train/raw/cross_entropy", "train/raw/l2", "val/acc"} <= set(scalars)


@pytest.mark.parametrize("version", ["bin", "py"])
def test_the_resnet_recipe_runs_on_cifar_files(compose_cfg, tmp_path, version: str) -> None:
    from tests import test_cifar

    root = getattr(test_cifar, f"write_cifar10_{version}")(tmp_path / "cifar")
    cfg = compose_cfg("experiment=cifar_resnet", f"data.root={root}", "data.batch_size=4",
                      "data.num_workers=1", "trainer.max_epochs=1", *QUIET, fast=False)  # fmt: skip
    metrics = train(cfg)
    assert {"test/acc", "test/objective", "test/term/l2"} <= set(metrics)
    assert Path(tmp_path / "checkpoints" / "last.ckpt").exists()
