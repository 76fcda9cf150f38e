"""End to end: `task=flow` trained by `train(cfg)`, read back through TensorBoard: the two
terms and their sum, NLL beside the data's exact density, bits per dimension, pictures;
and the settings it refuses before training."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from objectives.run.assemble import assemble
from objectives.run.train import train
from tests.conftest import config_error_of, read_accumulator, read_scalars

SMALL = ["model.layers=2", "model.hidden=[16]", "trainer.log_every_n_steps=5"]


def last(scalars: dict, tag: str) -> float:
    return scalars[tag][-1][1]


def test_digits_flow_logs_both_terms_their_sum_bpd_and_samples(compose_cfg, tmp_path: Path):
    cfg = compose_cfg(
        "experiment=digits_flow", *SMALL, "callbacks.flow_figures.every_n_epochs=1",
        "callbacks.grad_attribution=null", "callbacks.parameter_stats=null",
    )  # fmt: skip
    train(cfg)
    scalars = read_scalars(tmp_path / "tensorboard")
    prior, volume = dict(scalars["train/raw/prior_nll"]), dict(scalars["train/raw/log_det"])
    total = dict(scalars["train/objective"])
    assert len(total) >= 4
    for step, value in total.items():  # J = the two terms, weight 1 each
        assert value == pytest.approx(prior[step] + volume[step], rel=1e-5, abs=1e-4)
        assert dict(scalars["train/term/log_det"])[step] == pytest.approx(volume[step])
    # bits per dimension of 64 pixels of 17 levels, from the NLL of the dequantised pixels
    for stage in ("val", "test"):
        nll, bpd = last(scalars, f"{stage}/nll"), last(scalars, f"{stage}/bpd")
        assert bpd == pytest.approx((nll + 64 * math.log(17)) / (64 * math.log(2)), rel=1e-5)
    assert last(scalars, "val/nll") == pytest.approx(last(scalars, "val/objective"), rel=1e-5)
    assert "val/true_nll" not in scalars  # no known density for digits
    assert "val/samples" in read_accumulator(tmp_path / "tensorboard").Tags()["images"]


def test_ring_flow_reports_the_exact_density_and_draws_it(compose_cfg, tmp_path: Path):
    cfg = compose_cfg(
        "experiment=ring_flow", "model=spline_flow", *SMALL, "data.source.n=2000",
        "callbacks=none", "callbacks.flow_figures.every_n_epochs=1",  # the recipe's figures stay
    )  # fmt: skip
    train(cfg)
    scalars = read_scalars(tmp_path / "tensorboard")
    # the exact mixture's NLL of the test rows, computed here from the split itself
    test_x = assemble(cfg).datamodule.split("test")[0]
    from objectives.data.ring_density import ring_log_density

    exact = float(-ring_log_density(test_x, std=0.1).mean())
    assert last(scalars, "test/true_nll") == pytest.approx(exact, abs=1e-4)
    assert last(scalars, "test/nll") > exact - 0.05  # two epochs: far from the truth
    images = read_accumulator(tmp_path / "tensorboard").Tags()["images"]
    assert {"val/samples", "val/density"} <= set(images)


def test_gaussian_flow_reaches_the_generating_density(compose_cfg, tmp_path: Path) -> None:
    """An affine map is a perfect flow here: the test NLL reaches the generating density's
    NLL of the same rows (the recipe as it is, ~1,200 steps, without its figures)."""
    cfg = compose_cfg("experiment=gaussian2d_flow", "trainer.max_epochs=40", "callbacks=none")
    metrics = train(cfg)
    assert abs(metrics["test/nll"] - metrics["test/true_nll"]) < 0.01


def test_odd_dimensions_get_uneven_halves(compose_cfg) -> None:
    parts = assemble(
        compose_cfg(
            "experiment=gaussian2d_flow", "data.source.mean=[0,0,0]",
            "data.source.covariance=[[1,0.5,0],[0.5,1,0],[0,0,2]]",
        )
    )  # fmt: skip
    parts.datamodule.setup("fit")
    x = next(iter(parts.datamodule.train_dataloader()))[0]
    z, log_det = parts.module.model(x)
    assert z.shape == x.shape == (256, 3) and log_det.shape == (256,)
    kept = [c.kept.tolist() for c in parts.module.model.couplings[:2]]
    assert kept == [[0, 2], [1]]


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        (["data.source.mean=[0]", "data.source.covariance=[[1]]"], "nothing to condition on"),
        (["model.layers=0"], "model.layers=0"),
        (["model=spline_flow", "model.bins=0"], "model.bins"),  # the rest: test_flow_models.py
        (["loss=[prior_nll]"], "loss=[prior_nll,log_det]"),
        (["loss=mse"], "loss="),
        (["task.dequantize=null", "experiment=digits_flow"], "task.dequantize"),
    ],
)
def test_settings_that_cannot_train_a_flow_are_refused_at_assembly(
    compose_cfg, overrides: list[str], words: str
) -> None:
    cfg = compose_cfg("experiment=gaussian2d_flow", *overrides)
    assert words in config_error_of(lambda: assemble(cfg))


def test_a_network_that_is_no_flow_is_refused(compose_cfg) -> None:
    cfg = compose_cfg("task=flow", "data=gaussian2d", "model=mlp", "loss=[prior_nll,log_det]")
    assert "model=realnvp|spline_flow" in config_error_of(lambda: assemble(cfg))


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        (["experiment=ring_flow", "task.dequantize=17"], "off that grid"),
        (["experiment=gaussian2d_flow", "data.standardize_inputs=true"], "standardize_inputs"),
    ],
)
def test_data_a_flow_cannot_read_is_refused_before_training(compose_cfg, overrides, words):
    cfg = compose_cfg(*overrides, "callbacks=none")
    assert words in config_error_of(lambda: train(cfg))


def test_samples_are_exact_inverses(compose_cfg) -> None:
    module = assemble(compose_cfg("experiment=ring_flow", *SMALL)).module
    generator = torch.Generator().manual_seed(0)
    x = module.sample(100, generator)
    z = torch.randn(100, 2, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(module.model(x)[0], z, atol=1e-5)
