"""task=metric_learning: ArcFace, CosFace and multi-similarity against pytorch-metric-learning
(loss and gradients), precision@1 against a brute-force loop, the class directions as the
loss's own parameters (their own optimizer group, in checkpoints), and the digits recipe."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from objectives.errors import ConfigError
from objectives.losses.metric_learning import ArcFace, CosFace, multi_similarity
from objectives.metrics.retrieval_precision import PrecisionAtOne, precision_at_one
from objectives.run.train import train
from tests.conftest import config_error_of, read_scalars

pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
pml_miners = pytest.importorskip("pytorch_metric_learning.miners")

# 1e-6, absolute in float64; in float32 relative to the value's size (a loss of 35 is
# 3.8e-6 from its neighbouring float32 number: summing in another order moves it one ulp)
TOLERANCE = 1e-6


def batch(dtype: torch.dtype, seed: int = 0, n: int = 48, dim: int = 16, classes: int = 6):
    generator = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(n, dim, generator=generator, dtype=dtype)
    labels = torch.randint(0, classes, (n,), generator=generator)
    return embeddings, labels


def gradients(loss: torch.Tensor, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    return list(torch.autograd.grad(loss, inputs))


def assert_close(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    scale = 1.0 if ours.dtype == torch.float64 else max(1.0, theirs.abs().max().item())
    assert (ours - theirs).abs().max().item() <= TOLERANCE * scale, (ours, theirs)


# -- the losses against pytorch-metric-learning ----------------------------------------------------
MARGIN_LOSSES = [(ArcFace, pml_losses.ArcFaceLoss), (CosFace, pml_losses.CosFaceLoss)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("ours_cls", "theirs_cls"), MARGIN_LOSSES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_margin_losses_equal_pytorch_metric_learning(ours_cls, theirs_cls, dtype, seed) -> None:
    """Same embeddings, labels and W: the same loss, gradient in the embeddings and in W."""
    embeddings, labels = batch(dtype, seed)
    ours = ours_cls(num_classes=6, embedding_size=16).to(dtype)
    theirs = theirs_cls(num_classes=6, embedding_size=16)
    theirs.W.data = ours.W.data.clone()
    e1 = embeddings.clone().requires_grad_(True)
    e2 = embeddings.clone().requires_grad_(True)
    loss1, loss2 = ours(e1, labels), theirs(e2, labels)
    assert_close(loss1, loss2)
    expected = gradients(loss2, [e2, theirs.W])
    for g1, g2 in zip(gradients(loss1, [e1, ours.W]), expected, strict=True):
        assert_close(g1, g2)


def test_arcface_beyond_180_degrees_takes_the_monotone_branch() -> None:
    """Embeddings pointing away from their class direction (θ_y > 180° − m): ArcFace uses
    cos θ − m·sin m there, as pytorch-metric-learning does, equal in loss and gradient."""
    ours = ArcFace(num_classes=3, embedding_size=4).double()
    theirs = pml_losses.ArcFaceLoss(num_classes=3, embedding_size=4)
    theirs.W.data = ours.W.data.clone()
    labels = torch.tensor([0, 1, 2, 0])
    away = -ours.W.data[:, labels].T + 0.05 * torch.randn(4, 4, dtype=torch.float64)
    angles = torch.rad2deg(torch.acos(ours.cosines(away).gather(1, labels[:, None])))
    assert (angles > 180 - 28.6).all()
    e1, e2 = away.clone().requires_grad_(True), away.clone().requires_grad_(True)
    loss1, loss2 = ours(e1, labels), theirs(e2, labels)
    assert_close(loss1, loss2)
    assert_close(*gradients(loss1, [e1]), *gradients(loss2, [e2]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("mined", [True, False])
def test_multi_similarity_equals_pytorch_metric_learning(dtype, seed, mined) -> None:
    """MultiSimilarityLoss(2, 50, 0.5), with MultiSimilarityMiner(0.1) or on every pair."""
    embeddings, labels = batch(dtype, seed, n=40, classes=5)
    e1 = embeddings.clone().requires_grad_(True)
    e2 = embeddings.clone().requires_grad_(True)
    loss1 = multi_similarity(e1, labels, epsilon=0.1 if mined else None)
    pairs = pml_miners.MultiSimilarityMiner(epsilon=0.1)(e2, labels) if mined else None
    loss2 = pml_losses.MultiSimilarityLoss(alpha=2, beta=50, base=0.5)(e2, labels, pairs)
    assert loss1.item() > 0
    assert_close(loss1, loss2)
    assert_close(*gradients(loss1, [e1]), *gradients(loss2, [e2]))


def test_multi_similarity_without_pairs_is_zero_as_in_pytorch_metric_learning() -> None:
    """All labels distinct: no positive pair, nothing to mine, loss 0 with a zero gradient."""
    embeddings = torch.randn(5, 3, requires_grad=True)
    labels = torch.arange(5)
    loss = multi_similarity(embeddings, labels)
    miner = pml_miners.MultiSimilarityMiner(epsilon=0.1)
    theirs = pml_losses.MultiSimilarityLoss()(embeddings, labels, miner(embeddings, labels))
    assert loss.item() == theirs.item() == 0.0
    assert torch.autograd.grad(loss, embeddings)[0].abs().max() == 0


# -- precision@1 -----------------------------------------------------------------------------------
def brute_force_precision(embeddings: torch.Tensor, labels: torch.Tensor) -> float:
    """For each i, the j ≠ i of highest cosine (first on ties), by Python loops."""
    rows = [e / e.norm() for e in embeddings.double()]
    hits = 0
    for i, a in enumerate(rows):
        best, nearest = -math.inf, -1
        for j, b in enumerate(rows):
            if j != i and float(a @ b) > best:
                best, nearest = float(a @ b), j
        hits += int(labels[nearest] == labels[i])
    return hits / len(rows)


def test_precision_at_one_equals_a_brute_force_loop() -> None:
    embeddings, labels = batch(torch.float64, n=60, dim=3, classes=3)
    assert precision_at_one(embeddings, labels).item() == pytest.approx(
        brute_force_precision(embeddings, labels)
    )


def test_precision_metric_collects_the_whole_split() -> None:
    """Batch by batch equals the whole split at once (not a mean of per-batch figures)."""
    embeddings, labels = batch(torch.float32, n=64, dim=4, classes=4)
    metric = PrecisionAtOne()
    for part, part_labels in zip(embeddings.split(10), labels.split(10), strict=True):
        metric.update(part, part_labels)
    assert metric.compute().item() == pytest.approx(precision_at_one(embeddings, labels).item())


def test_precision_of_separated_clusters_is_one_and_of_one_row_undefined() -> None:
    labels = torch.tensor([0, 0, 1, 1])
    embeddings = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    assert precision_at_one(embeddings, labels).item() == 1.0
    assert math.isnan(precision_at_one(embeddings[:1], labels[:1]).item())


# -- the class directions: the loss's own parameters ----------------------------------------------
def build(compose_cfg, *overrides: str):
    from objectives.run.assemble import assemble

    return assemble(compose_cfg("experiment=digits_arcface", *overrides))


@pytest.mark.parametrize("loss", ["arcface", "cosface"])
def test_class_directions_are_sized_and_in_their_own_optimizer_group(compose_cfg, loss) -> None:
    """W is embedding_dim × the data's classes, in an optimizer group named after the loss
    at the loss file's lr; the network's parameters keep the optimizer's lr."""
    module = build(compose_cfg, f"loss={loss}", "task.embedding_dim=24").module
    W = module.objective.terms[0].fn.W
    assert tuple(W.shape) == (24, 10)
    optimizer = module.configure_optimizers()
    optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
    groups = {g["name"]: g for g in optimizer.param_groups}
    assert set(groups) == {"network", f"loss.{loss}"}
    assert [id(p) for p in groups[f"loss.{loss}"]["params"]] == [id(W)]
    assert groups[f"loss.{loss}"]["lr"] == 0.01
    assert groups["network"]["lr"] == 0.002
    assert id(W) not in {id(p) for p in groups["network"]["params"]}
    assert len(groups["network"]["params"]) == len(list(module.model.parameters()))


def test_term_lr_changes_only_the_class_directions_step(compose_cfg) -> None:
    """One SGD step: W moves by its own lr × its gradient, the network by the optimizer's."""
    module = build(compose_cfg, "optimizer=sgd", "optimizer.lr=0.1", "optimizer.momentum=0",
                   "optimizer.weight_decay=0", "loss.arcface.lr=0.5").module  # fmt: skip
    optimizer = module.configure_optimizers()
    optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
    x = torch.randn(8, 1, 8, 8)
    labels = torch.arange(8)
    term = module.objective.terms[0]
    W, first = term.fn.W, next(module.model.parameters())
    before_W, before_first = W.detach().clone(), first.detach().clone()
    term.raw({"embeddings": module.model(x), "labels": labels}).backward()
    grad_W, grad_first = W.grad.clone(), first.grad.clone()
    optimizer.step()
    assert torch.allclose(W.detach(), before_W - 0.5 * grad_W, atol=1e-7)
    assert torch.allclose(first.detach(), before_first - 0.1 * grad_first, atol=1e-7)


def test_a_term_without_parameters_refuses_an_lr(compose_cfg) -> None:
    message = config_error_of(
        lambda: build(compose_cfg, "loss=multi_similarity", "+loss.multi_similarity.lr=0.1")
    )
    assert "loss.multi_similarity" in message and "no parameters of its own" in message


def test_a_class_count_that_clashes_with_the_data_is_refused(compose_cfg) -> None:
    message = config_error_of(lambda: build(compose_cfg, "loss.arcface.fn.num_classes=7"))
    assert "num_classes=7" in message and "num_classes=10" in message


def test_a_margin_loss_without_sizes_names_the_task(compose_cfg) -> None:
    """ArcFace outside task=metric_learning: one line naming the task that sizes it."""
    with pytest.raises(ConfigError, match="task=metric_learning"):
        ArcFace().fit_sizes({"embedding_size": 4})


def test_a_bad_margin_is_one_line(compose_cfg) -> None:
    message = config_error_of(lambda: build(compose_cfg, "loss.arcface.fn.margin=200"))
    assert "margin" in message


# -- end to end ------------------------------------------------------------------------------------
def test_digits_arcface_reaches_precision_097_and_saves_w(compose_cfg, tmp_path: Path) -> None:
    """The recipe: test precision@1 ≥ 0.97 (raw pixels score 0.952, the untrained encoder
    0.867); W is in the best checkpoint, and evaluating that checkpoint gives the same
    figure; each term is in TensorBoard, with the W group's learning rate."""
    cfg = compose_cfg("experiment=digits_arcface", "trainer.max_epochs=30", "torch_threads=1")
    metrics = train(cfg)
    assert float(metrics["test/precision_at_1"]) >= 0.97, metrics
    best = next((tmp_path / "checkpoints").glob("epoch_*.ckpt"))
    state = torch.load(best, map_location="cpu", weights_only=False)["state_dict"]
    assert tuple(state["objective.terms.0.fn.W"].shape) == (64, 10)
    scalars = read_scalars(tmp_path / "tensorboard")
    for tag in ("train/raw/arcface", "train/term/l2", "val/precision_at_1"):
        assert tag in scalars, sorted(scalars)
    assert scalars["lr-Adam/loss.arcface"][-1][1] == pytest.approx(0.01)
    assert scalars["lr-Adam/network"][-1][1] == pytest.approx(0.002)

    from objectives.run.evaluate import evaluate

    again = evaluate(compose_cfg(f"ckpt_path={best}", config="eval"))
    assert float(again["test/precision_at_1"]) == pytest.approx(
        float(metrics["test/precision_at_1"])
    )
