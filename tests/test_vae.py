"""End to end: `task=vae` trained by `train(cfg)`, checked through its TensorBoard events
against the closed-form pPCA figures, and its refusals at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from objectives.models.vae import ConvVAE
from objectives.run.assemble import assemble
from objectives.run.train import train
from tests.conftest import config_error_of, read_accumulator, read_scalars

# shorter than experiment=ppca_vae (300 epochs at lr 0.01): 80 epochs at lr 0.02
PPCA_SHORT = [
    "experiment=ppca_vae",
    "trainer.max_epochs=80",
    "trainer.check_val_every_n_epoch=20",
    "optimizer.lr=0.02",
    "test=false",
]


def last(scalars: dict, tag: str) -> float:
    return scalars[tag][-1][1]


def assert_bound_below_elbo_at_every_validation(scalars: dict) -> None:
    elbo, nll_iw = dict(scalars["val/elbo"]), dict(scalars["val/nll_iw"])
    assert elbo and elbo.keys() == nll_iw.keys()
    for step, value in elbo.items():
        assert nll_iw[step] <= -value, step


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sigma2", "active"),
    [("null", 5), ("2", 3)],  # learned σ² ≈ 1: no direction collapses; σ² = 2: 1.5 and 1.2 do
)
def test_linear_vae_reaches_the_ppca_likelihood(compose_cfg, tmp_path: Path, sigma2, active):
    cfg = compose_cfg(*PPCA_SHORT, f"loss.recon_gaussian.sigma2={sigma2}")
    train(cfg)
    scalars = read_scalars(tmp_path / "tensorboard")
    elbo, exact = last(scalars, "val/elbo"), last(scalars, "val/ppca_loglik")
    assert abs(elbo - exact) < 0.01 * abs(exact)
    assert last(scalars, "val/active_units") == active == last(scalars, "val/ppca_active_units")
    assert_bound_below_elbo_at_every_validation(scalars)
    # the generating parameters' figure beside it; σ² = 2 is far from the truth (σ² = 1)
    truth = last(scalars, "val/true_loglik")
    assert (abs(truth - exact) < 0.05) == (sigma2 == "null")
    if sigma2 == "null":  # the learned decoder variance is the ML pPCA's σ²
        assert last(scalars, "val/sigma2") == pytest.approx(
            last(scalars, "val/ppca_sigma2"), abs=0.05
        )
    else:
        assert last(scalars, "val/sigma2") == pytest.approx(2.0)


@pytest.mark.slow
def test_digits_vae_logs_terms_beta_schedule_and_images(compose_cfg, tmp_path: Path) -> None:
    steps = 30
    cfg = compose_cfg(
        "experiment=digits_vae",
        "trainer.max_epochs=3",
        "trainer.log_every_n_steps=5",
        "task.iw_samples=8",
        "callbacks.vae_figures.every_n_epochs=1",
        f"loss.kl.weight={{schedule:linear,start:0,end:1,steps:{steps}}}",
    )
    train(cfg)
    scalars = read_scalars(tmp_path / "tensorboard")
    beta = dict(scalars["train/beta"])
    assert len(beta) >= 8
    for step, value in beta.items():  # the warm-up as configured: min(step / 30, 1)
        assert value == pytest.approx(min(step / steps, 1.0), abs=1e-6), step
    raw, term = dict(scalars["train/raw/kl"]), dict(scalars["train/term/kl"])
    for step, value in beta.items():
        assert term[step] == pytest.approx(value * raw[step], rel=1e-5, abs=1e-6)
    elbo = [v for _, v in scalars["val/elbo"]]
    assert elbo[-1] > elbo[0]  # −ELBO falls
    assert_bound_below_elbo_at_every_validation(scalars)
    assert {"test/elbo", "test/nll_iw", "test/active_units", "val/kl_dim/7"} <= set(scalars)
    images = read_accumulator(tmp_path / "tensorboard").Tags()["images"]
    assert {"val/reconstructions", "val/prior_samples", "val/latent_traversal"} <= set(images)


def test_vae_refuses_what_cannot_work(compose_cfg) -> None:
    message = config_error_of(lambda: assemble(compose_cfg("task=vae", "data=digits", "loss=mse")))
    assert "recon_bernoulli" in message and "kl" in message
    message = config_error_of(
        lambda: assemble(compose_cfg("task=vae", "data=digits", "loss=[kl]", "model=vae_mlp"))
    )
    assert "exactly one reconstruction" in message
    message = config_error_of(
        lambda: assemble(
            compose_cfg("task=vae", "data=digits", "loss=[recon_bernoulli,kl]", "model=mlp")
        )
    )
    assert "model=vae_mlp" in message
    message = config_error_of(
        lambda: assemble(compose_cfg("experiment=digits_vae", "model.channels=[4,4,4,4]"))
    )
    assert "model.channels" in message


@pytest.mark.parametrize("model", ["vae_mlp", "vae_conv"])
def test_vae_networks_assemble_on_digits(compose_cfg, model: str) -> None:
    """The networks `tests/test_config.py` leaves to this file (OTHER_MODEL_USES)."""
    parts = assemble(compose_cfg("experiment=digits_vae", f"model={model}"))
    parts.datamodule.setup("fit")
    x, _ = next(iter(parts.datamodule.train_dataloader()))
    mu, logvar = parts.module.model.encode(x)
    assert mu.shape == logvar.shape == (len(x), 8)
    assert parts.module.model(x).shape == x.shape
    outputs = parts.module.step_outputs((x,))
    assert outputs["recon"].shape == x.shape and outputs["z"].shape == (len(x), 8)


def test_conv_vae_reads_28_by_28_idx_sized_images() -> None:
    """28×28 → 14×14 → 7×7 and back: the decoder gives one value a pixel."""
    model = ConvVAE(1, 28, 28, latent_dim=4)
    x = torch.rand(3, 1, 28, 28)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (3, 4)
    assert model.decode(mu).shape == x.shape == model(x).shape
