"""Accuracy and macro F1 read off one multiclass confusion matrix.

Both are functions of the confusion matrix, which one `bincount` a step accumulates.
torchmetrics' `MulticlassAccuracy` and `MulticlassF1Score` each keep their own
statistics, so each step paid for two separate updates, a noticeable share of a small
CNN's step. These two are `MulticlassConfusionMatrix`es with another `compute`: in one
`MetricCollection`, next to each other and to the matrix itself, torchmetrics' compute
groups find their states equal and update one shared matrix a step, one update for all
three. The scores come from torchmetrics' own reductions of the per-class counts, so
they equal `MulticlassAccuracy(average="micro")` and `MulticlassF1Score(average="macro")`
(tests/test_confusion_metrics.py).

Inputs are not validated each step (`validate_args=False`): the data checks refuse class
labels outside 0..k-1 before training.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor
from torchmetrics.classification import MulticlassConfusionMatrix
from torchmetrics.functional.classification.accuracy import _accuracy_reduce
from torchmetrics.functional.classification.f_beta import _fbeta_reduce


class _ConfusionScore(MulticlassConfusionMatrix):
    """A score computed from the accumulated confusion matrix (rows: target, columns:
    prediction)."""

    higher_is_better = True
    plot_lower_bound = 0.0
    plot_upper_bound = 1.0

    def __init__(self, num_classes: int, **kwargs: Any) -> None:
        kwargs.setdefault("validate_args", False)
        super().__init__(num_classes=num_classes, **kwargs)

    def stat_scores(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Per-class true positives, false positives, true negatives, false negatives."""
        matrix = self.confmat
        tp = matrix.diagonal()
        fp = matrix.sum(0) - tp
        fn = matrix.sum(1) - tp
        tn = matrix.sum() - tp - fp - fn
        return tp, fp, tn, fn


class ConfusionAccuracy(_ConfusionScore):
    """The share of correct predictions (micro accuracy)."""

    def compute(self) -> Tensor:
        return _accuracy_reduce(*self.stat_scores(), average="micro")


class ConfusionF1(_ConfusionScore):
    """Macro F1: the mean over classes of 2TP / (2TP + FP + FN), classes that neither
    occur nor are predicted left out (torchmetrics' convention)."""

    def compute(self) -> Tensor:
        return _fbeta_reduce(*self.stat_scores(), beta=1.0, average="macro")
