"""Accuracy and macro F1 read off one confusion matrix equal torchmetrics' own metrics,
and in one collection they share a single update a step."""

from __future__ import annotations

import pytest
import torch
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
)

from objectives.metrics.confusion import ConfusionAccuracy, ConfusionF1


def batches(classes: int, labels: int, seed: int, n: int = 6):
    """Random logits and targets; targets use only the first `labels` classes."""
    generator = torch.Generator().manual_seed(seed)
    for _ in range(n):
        logits = torch.randn(32, classes, generator=generator)
        yield logits, torch.randint(0, labels, (32,), generator=generator)


@pytest.mark.parametrize(("classes", "labels", "seed"), [(10, 10, 0), (10, 7, 1), (2, 2, 2)])
def test_scores_equal_torchmetrics(classes: int, labels: int, seed: int) -> None:
    ours = MetricCollection(
        {"acc": ConfusionAccuracy(num_classes=classes), "f1": ConfusionF1(num_classes=classes)}
    )
    reference = MetricCollection(
        {
            "acc": MulticlassAccuracy(num_classes=classes, average="micro"),
            "f1": MulticlassF1Score(num_classes=classes, average="macro"),
        }
    )
    for logits, target in batches(classes, labels, seed):
        ours.update(logits, target)
        reference.update(logits, target)
    got, want = ours.compute(), reference.compute()
    assert torch.equal(got["acc"], want["acc"])
    assert torch.allclose(got["f1"], want["f1"], rtol=1e-6)


def test_a_class_never_seen_nor_predicted_is_left_out_of_macro_f1() -> None:
    f1 = ConfusionF1(num_classes=4)
    # classes 0 and 1 only: class 0 perfect, class 1 half right; classes 2, 3 absent
    f1.update(torch.tensor([0, 0, 1, 0]), torch.tensor([0, 0, 1, 1]))
    class0 = 2 * 2 / (2 * 2 + 1 + 0)  # tp=2, fp=1 (the 1 predicted as 0), fn=0
    class1 = 2 * 1 / (2 * 1 + 0 + 1)  # tp=1, fp=0, fn=1
    assert f1.compute().item() == pytest.approx((class0 + class1) / 2)


def test_one_update_serves_the_matrix_and_both_scores() -> None:
    collection = MetricCollection(
        {
            "acc": ConfusionAccuracy(num_classes=5),
            "f1": ConfusionF1(num_classes=5),
            "confusion_matrix": MulticlassConfusionMatrix(num_classes=5, validate_args=False),
        }
    )
    for logits, target in batches(5, 5, 3):
        collection.update(logits, target)
    assert list(collection.compute_groups.values()) == [["acc", "confusion_matrix", "f1"]]
    matrix = collection.compute()["confusion_matrix"]
    assert matrix.sum().item() == 6 * 32
    assert collection.compute()["acc"].item() == pytest.approx(
        matrix.diagonal().sum().item() / (6 * 32)
    )
