"""Classification: focal loss against references, the task's outputs, data and errors."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from objectives.callbacks.objective_text import objective_markdown
from objectives.data.images import blobs_images, digits
from objectives.errors import ConfigError
from objectives.losses import FocalLoss
from objectives.models import CNN
from objectives.run.assemble import assemble
from objectives.run.train import train
from tests.conftest import config_error_of, read_accumulator, read_scalars


# -- focal loss ------------------------------------------------------------------------------
def test_focal_with_gamma_zero_is_cross_entropy() -> None:
    logits, target = torch.randn(16, 5), torch.randint(0, 5, (16,))
    assert FocalLoss(gamma=0.0)(logits, target).item() == pytest.approx(
        F.cross_entropy(logits, target).item(), rel=1e-6
    )


def test_focal_matches_a_hand_computed_value() -> None:
    # two classes, logits (0, ln 3): p = (1/4, 3/4); true class 1 then 0
    logits = torch.tensor([[0.0, math.log(3.0)], [0.0, math.log(3.0)]])
    target = torch.tensor([1, 0])
    gamma, alpha = 2.0, [0.25, 2.0]
    first = -alpha[1] * (1 - 0.75) ** gamma * math.log(0.75)
    second = -alpha[0] * (1 - 0.25) ** gamma * math.log(0.25)
    loss = FocalLoss(gamma=gamma, alpha=alpha)(logits, target)
    assert loss.item() == pytest.approx((first + second) / 2, rel=1e-6)


def test_focal_gradcheck() -> None:
    logits = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 4, (6,))
    loss = FocalLoss(gamma=1.5, alpha=[1.0, 0.5, 2.0, 1.0]).double()
    assert torch.autograd.gradcheck(lambda x: loss(x, target), (logits,))


def test_focal_refuses_negative_gamma_or_alpha() -> None:
    with pytest.raises(ConfigError, match=r"loss\.focal\.fn\.gamma must be a number ≥ 0"):
        FocalLoss(gamma=-1)
    with pytest.raises(ConfigError, match="alpha ≥ 0"):
        FocalLoss(alpha=[1, -1])


# -- data and model --------------------------------------------------------------------------
def test_digits_are_the_bundled_real_images() -> None:
    images, labels = digits()
    assert images.shape == (1797, 1, 8, 8) and labels.shape == (1797,)
    assert images.min().item() == 0.0 and images.max().item() == 1.0
    assert torch.bincount(labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


def test_digits_subset_is_relabelled_in_the_order_given() -> None:
    full_images, full_labels = digits()
    images, labels = digits(classes=[8, 3])
    assert set(labels.tolist()) == {0, 1}
    assert (labels == 0).sum().item() == (full_labels == 8).sum().item()
    assert torch.equal(images[labels == 1], full_images[full_labels == 3])
    with pytest.raises(ConfigError, match="at least two distinct digits"):
        digits(classes=[3])


def test_blobs_images_are_labelled_by_their_mean() -> None:
    images, labels = blobs_images(n=300)
    means = images.mean(dim=(1, 2, 3))
    assert torch.equal(labels == 1, means > 0.2) and torch.equal(labels == 0, means < -0.2)
    assert all(count > 50 for count in torch.bincount(labels).tolist())  # all three occur


def test_stratified_splits_keep_class_shares(compose_cfg) -> None:
    parts = assemble(compose_cfg("experiment=digits_cnn"))
    parts.datamodule.setup()
    for split, expected in (("train", 0.70), ("val", 0.15), ("test", 0.15)):
        counts = torch.bincount(parts.datamodule.splits[split][1], minlength=10)
        shares = counts.float() / digits()[1].bincount().float()
        assert shares.sub(expected).abs().max().item() < 0.02, split


def test_cnn_is_sized_from_the_data_and_refuses_tiny_images() -> None:
    net = CNN(in_channels=1, height=8, width=8, num_classes=10)
    assert net(torch.zeros(3, 1, 8, 8)).shape == (3, 10)
    assert CNN(3, 28, 28, 4, dropout=0.0)(torch.zeros(2, 3, 28, 28)).shape == (2, 4)
    assert CNN(1, 8, 8, 10, channels=[8, 8, 8])(torch.zeros(1, 1, 8, 8)).shape == (1, 10)
    with pytest.raises(ConfigError, match="needs images of at least 16×16"):
        CNN(1, 8, 8, 10, channels=[8, 8, 8, 8])


# -- end to end ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "term"),
    [
        (["loss=focal"], "focal"),
        (["loss=multi_margin"], "multi_margin"),
        (["loss.cross_entropy.fn.label_smoothing=0.1"], "cross_entropy"),
    ],
)
def test_digits_losses_log_every_term(compose_cfg, tmp_path: Path, overrides, term) -> None:
    cfg = compose_cfg("experiment=digits_cnn", *overrides, "trainer.max_epochs=2")
    metrics = train(cfg)
    scalars = read_scalars(tmp_path / "tensorboard")
    for tag in ("train/objective", f"train/term/{term}", "train/term/l2", "val/acc", "test/acc"):
        assert tag in scalars, tag
    assert {"val/f1_macro", "train_epoch/acc", f"val/raw/{term}"} <= set(scalars)
    assert metrics["test/acc"] > 0.5  # two epochs already beat chance (0.1) by far
    images = read_accumulator(tmp_path / "tensorboard").Tags()["images"]
    assert "val/confusion_matrix" in images and "test/confusion_matrix" in images
    assert "val/saliency" in images  # ∂J/∂X as an 8×8 map


def test_bce_runs_on_two_digits(compose_cfg) -> None:
    cfg = compose_cfg(
        "experiment=digits_cnn", "loss=bce", "data.source.classes=[3,8]", "logger=none"
    )
    metrics = train(cfg)
    assert metrics["test/acc"] > 0.9


def test_formula_shows_the_l2_term_and_names_dropout_as_a_model_setting(compose_cfg) -> None:
    module = assemble(compose_cfg("experiment=seed_regularization")).module
    assert module.objective.formula() == "J(θ) = 1·CE(logits, y) + 0.01·‖θ‖₂²"
    assert "Model regularization (not a term of J): dropout(p=0.5)" in objective_markdown(module)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["experiment=digits_cnn", "loss=mse"],
         r"loss 'mse' reads pred, but task 'classification' produces only logits, target.*"
         r"loss=bce\|cross_entropy\|focal\|multi_margin"),
        (["loss=cross_entropy"],
         r"loss 'cross_entropy' reads logits, but task 'regression'.*loss=huber\|log_cosh"),
        (["experiment=digits_cnn", "loss=bce"],
         r"loss 'bce' reads binary_logit, which task 'classification' produces only for 2 "
         r"classes, but the data has 10"),
        (["experiment=digits_cnn", "loss=focal", "loss.focal.fn.alpha=[1,2,3]"],
         "3 class weights .alpha. but the model outputs 10 classes"),
        (["experiment=digits_cnn", "data=line"], "model CNN needs in_channels, height, width"),
        (["experiment=digits_cnn", "model.channels=[8,8,8,8]"], "needs images of at least 16×16"),
        (["experiment=digits_cnn", "data=mnist", "data.root=/nonexistent/folder"],
         r"data.root=/nonexistent/folder is not a folder"),
    ],
)  # fmt: skip
def test_classification_start_up_errors(compose_cfg, overrides, message) -> None:
    text = config_error_of(lambda: assemble(compose_cfg(*overrides)))
    assert re.search(message, text), text
