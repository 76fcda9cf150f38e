"""Metrics of learned representations, computed full-batch on whole splits held in memory,
and of generators (mode coverage on the 2-d ring, a Fréchet distance on 8×8 digits)."""

from objectives.metrics.embedding import knn_accuracy, knn_predict, linear_probe_accuracy
from objectives.metrics.gan import (
    DigitsFeatures,
    FrechetDigitsDistance,
    digits_fid,
    image_grid,
    mode_coverage,
    ring_scatter,
)

__all__ = [
    "DigitsFeatures",
    "FrechetDigitsDistance",
    "digits_fid",
    "image_grid",
    "knn_accuracy",
    "knn_predict",
    "linear_probe_accuracy",
    "mode_coverage",
    "ring_scatter",
]
