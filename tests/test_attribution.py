"""Gradient attribution against the seed's closed forms, and the callbacks' TensorBoard output."""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path

import pytest
import torch
from torch import nn

from objectives.callbacks import GradientAttribution
from objectives.callbacks.grad_attribution import attribution, attribution_tags
from objectives.callbacks.objective_layout import objective_layout
from objectives.errors import ConfigError
from objectives.objective import LossTerm, Objective, ParameterPenalty
from objectives.regularizers import closed_form_gradient, elastic_net, l1, l2
from objectives.run.train import train
from tests.conftest import read_accumulator, read_scalars


def seed_line(lam: float) -> tuple[Objective, nn.Linear, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    x = torch.linspace(0, 10, 100, dtype=torch.float64).unsqueeze(1)
    y = 2 * x + 1 + torch.randn(100, 1, dtype=torch.float64)
    net = nn.Linear(1, 1).double()
    with torch.no_grad():
        net.weight.fill_(0.5)
        net.bias.fill_(-0.3)
    terms = [LossTerm("mse", nn.MSELoss()), ParameterPenalty("l2", l2, weight=lam)]
    return Objective(terms).bind(net), net, x, y


def test_attribution_matches_the_seeds_dw_loss_and_dw_reg() -> None:
    """The seed's NumPy example: dw_loss = 2/n Σ(ŷ−y)x, db_loss = 2/n Σ(ŷ−y), dw_reg = 2λw."""
    lam = 0.01
    objective, net, x, y = seed_line(lam)
    value = objective({"pred": net(x), "target": y})
    result = attribution(objective, value, list(net.parameters()), step=0)

    w, b, n = 0.5, -0.3, len(x)
    residual = (w * x + b - y).flatten()
    dw_loss = (2 / n) * (residual * x.flatten()).sum().item()
    db_loss = (2 / n) * residual.sum().item()
    dw_reg, db_reg = 2 * lam * w, 2 * lam * b
    loss_norm, reg_norm = math.hypot(dw_loss, db_loss), math.hypot(dw_reg, db_reg)
    total_norm = math.hypot(dw_loss + dw_reg, db_loss + db_reg)
    cosine = (dw_loss * dw_reg + db_loss * db_reg) / (loss_norm * reg_norm)

    expected = [loss_norm, reg_norm, total_norm, cosine]
    assert result.tolist() == pytest.approx(expected, rel=1e-6, abs=1e-6)
    assert attribution_tags(["mse", "l2"]) == [
        "train/grad_norm/mse",
        "train/grad_norm/l2",
        "train/grad_norm/objective",
        "train/grad_cos/mse__l2",
    ]


@pytest.mark.parametrize("fn", [l1, l2, partial(elastic_net, l1_ratio=0.3)])
def test_closed_form_penalty_gradients_equal_autograd(fn) -> None:
    params = [torch.randn(3, 4, dtype=torch.float64, requires_grad=True) for _ in range(2)]
    expected = torch.autograd.grad(fn(params), params)
    closed = closed_form_gradient(fn)(params)
    for a, b in zip(closed, expected, strict=True):
        assert torch.allclose(a, b)


def test_a_term_the_parameters_do_not_reach_has_zero_gradient() -> None:
    objective, net, x, y = seed_line(0.01)
    frozen = nn.Linear(1, 1).double()
    value = objective({"pred": net(x), "target": y})
    grads = objective.term_gradients(value, list(frozen.parameters()))
    assert grads.shape == (2, 2) and torch.count_nonzero(grads[0]) == 0


def test_every_n_steps_must_be_a_non_negative_integer() -> None:
    with pytest.raises(ConfigError, match="every_n_steps must be an integer ≥ 0"):
        GradientAttribution(every_n_steps=-1)


def test_attribution_does_not_change_training(compose_cfg, tmp_path: Path) -> None:
    """Retaining the graph for attribution leaves the step's own gradients alone."""
    runs = []
    for every in (1, 0):
        cfg = compose_cfg(
            f"callbacks.grad_attribution.every_n_steps={every}",
            "test=false",
            "trainer.max_epochs=3",
        )
        cfg.paths.output_dir = str(tmp_path / f"every_{every}")
        train(cfg)
        runs.append(torch.load(tmp_path / f"every_{every}" / "checkpoints" / "last.ckpt"))
    for key, tensor in runs[0]["state_dict"].items():
        assert torch.equal(tensor, runs[1]["state_dict"][key]), key


def test_default_run_logs_attribution_histograms_and_layout(compose_cfg, tmp_path: Path) -> None:
    train(compose_cfg("regularizer=[l1,l2]", "trainer.max_epochs=3", "test=false"))
    scalars = read_scalars(tmp_path / "tensorboard")
    expected = {
        "train/grad_norm/mse", "train/grad_norm/l1", "train/grad_norm/l2",
        "train/grad_norm/objective", "train/grad_cos/mse__l1", "train/grad_cos/mse__l2",
        "train/grad_cos/l1__l2", "train/layer_grad_norm/weight", "train/layer_grad_norm/bias",
    }  # fmt: skip
    assert expected <= set(scalars)
    assert [step for step, _ in scalars["train/grad_norm/mse"]] == [0, 25, 50, 75][
        : len(scalars["train/grad_norm/mse"])
    ]
    accumulator = read_accumulator(tmp_path / "tensorboard")
    assert {"params/weight", "params/bias"} <= set(accumulator.Tags()["histograms"])
    from tensorboard.plugins.custom_scalar import layout_pb2

    (event,) = accumulator.Tensors("custom_scalars__config__")
    layout = layout_pb2.Layout.FromString(event.tensor_proto.string_val[0])
    categories = {
        c.title: {ch.title: list(ch.multiline.tag) for ch in c.chart} for c in layout.category
    }
    assert set(categories) == set(objective_layout())
    weighted = categories["objective and its terms (weighted)"]
    assert weighted["val"] == ["val/objective", "val/term/.*"]
    assert weighted["train"] == ["train/objective", "train/term/.*"]


def test_input_saliency_is_the_mean_absolute_input_gradient(compose_cfg, tmp_path: Path) -> None:
    """For ŷ = w·x + b and MSE over n rows, ∂J/∂x_i = 2/n·(ŷ_i − y_i)·w (L2 has no x)."""
    from types import SimpleNamespace

    from lightning.pytorch.loggers import TensorBoardLogger

    from objectives.callbacks import InputSaliency
    from objectives.run.assemble import assemble

    parts = assemble(compose_cfg())
    parts.datamodule.setup("fit")
    logger = TensorBoardLogger(str(tmp_path), name="", version="")
    trainer = SimpleNamespace(
        current_epoch=0, is_global_zero=True, datamodule=parts.datamodule,
        loggers=[logger], global_step=7, limit_val_batches=1.0,
    )  # fmt: skip
    InputSaliency(every_n_epochs=1).on_train_epoch_end(trainer, parts.module)
    logger.experiment.flush()

    x, y = next(iter(parts.datamodule.val_dataloader()))
    w, b = parts.module.model.weight.item(), parts.module.model.bias.item()
    expected = (2 / len(x) * (w * x + b - y).abs() * abs(w)).mean().item()
    (value,) = read_scalars(tmp_path)["val/saliency/x0"]
    assert value == (7, pytest.approx(expected, rel=1e-5))


def test_regression_figures_and_saliency_reach_tensorboard(compose_cfg, tmp_path: Path) -> None:
    train(
        compose_cfg(
            "data=synthetic", "model=mlp", "trainer.max_epochs=2", "test=false",
            "callbacks.regression_figures.every_n_epochs=1",
            "callbacks.input_saliency.every_n_epochs=1",
        )
    )  # fmt: skip
    tags = read_accumulator(tmp_path / "tensorboard").Tags()
    assert "val/pred_vs_target" in tags["images"]
    assert "val/error" in tags["histograms"]
    assert {f"val/saliency/x{j}" for j in range(5)} <= set(tags["scalars"])


def test_cosine_with_a_zero_gradient_is_nan_not_orthogonal() -> None:
    objective, net, x, y = seed_line(0.0)  # λ = 0: the L2 term has no gradient
    value = objective({"pred": net(x), "target": y})
    norm_mse, norm_l2, _, cosine = attribution(objective, value, list(net.parameters()), 0)
    assert norm_mse > 0 and norm_l2 == 0 and math.isnan(cosine)
