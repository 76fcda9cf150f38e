"""Metrics of learned representations, computed full-batch on whole splits held in memory."""

from objectives.metrics.embedding import knn_accuracy, knn_predict, linear_probe_accuracy

__all__ = ["knn_accuracy", "knn_predict", "linear_probe_accuracy"]
